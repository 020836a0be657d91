"""Every stack and resource event is also a notification, in the same transaction: Heat's
`orchestration.stack.*` types and payload for the stack, canopy's `orchestration.resource.*`
for its resources, one INSERT for a step's lot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from canopy.orchestration.events import hold_events, resource_event, stack_event, write_events
from canopy.orchestration.service import StackService
from canopy.store.models import OutboxEvent, Stack, StackResource
from tests.controllers.harness import Plane, make_plane, statements
from tests.notifications.helpers import Receiver, notify_plane, subscribe

from .helpers import (
    CLOUDS,
    create,
    delete_stack,
    events,
    hot,
    resources,
    send_signal,
    server,
    settle,
)
from .test_failures_and_replace import update


def _value(v: str) -> dict[str, Any]:
    return {"type": "OS::Heat::Value", "properties": {"value": v}}


async def outbox(p: Plane, sid: str) -> list[OutboxEvent]:
    async with p.db.read() as s:
        q = select(OutboxEvent).where(OutboxEvent.subject == f"stack/{sid}")
        return list((await s.execute(q.order_by(OutboxEvent.id))).scalars())


async def count_outbox(p: Plane) -> int:
    async with p.db.read() as s:
        return int((await s.execute(select(func.count(OutboxEvent.id)))).scalar_one())


class Boom(Exception):
    pass


async def test_create_update_and_delete_announce_heats_stack_types_in_order(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        template = {**hot({"a": _value("1")}), "description": "two values"}
        sid = await create(p, "announced", template, tags="x,y")
        assert (await settle(p, sid)).status == "COMPLETE"
        await update(p, sid, {**template, "resources": {"a": _value("1"), "b": _value("2")}})
        assert (await settle(p, sid)).status == "COMPLETE"
        await delete_stack(p, sid)
        assert (await settle(p, sid)).status == "COMPLETE"

        notes = await outbox(p, sid)
        assert [n.event_type for n in notes if ".stack." in n.event_type] == [
            "orchestration.stack.create.start",
            "orchestration.stack.create.end",
            "orchestration.stack.update.start",
            "orchestration.stack.update.end",
            "orchestration.stack.delete.start",
            "orchestration.stack.delete.end",
        ]
        # One notification per event of the stack's event list, in the same order.
        listed = await events(p, sid)
        assert len(notes) == len(listed)
        for note, ev in zip(notes, listed, strict=True):
            kind = "stack" if ev.resource_type == "OS::Heat::Stack" else "resource"
            phase = {"IN_PROGRESS": "start", "COMPLETE": "end", "FAILED": "error"}[ev.status]
            assert note.event_type == f"orchestration.{kind}.{ev.action.lower()}.{phase}"
            assert note.project_id == p.ctx.project_id
            assert note.created_at.replace(tzinfo=None) == ev.time.replace(tzinfo=None)

        first, last = notes[0].payload, notes[-1].payload
        assert first == {
            "stack_identity": sid,
            "stack_name": "announced",
            "tenant_id": p.ctx.project_id,
            "user_id": "u1",
            "user_identity": "u1",
            "state": "CREATE_IN_PROGRESS",
            "state_reason": first["state_reason"],
            "description": "two values",
            "tags": ["x", "y"],
            "create_at": first["create_at"],
            "updated_at": None,
        }
        assert first["create_at"].endswith("Z")
        assert last["state"] == "DELETE_COMPLETE" and last["updated_at"] is not None

        made = [n.payload for n in notes if n.event_type.startswith("orchestration.resource.")]
        seen = [(m["resource_name"], m["resource_action"], m["resource_status"]) for m in made]
        for name in ("a", "b"):  # a is unchanged by the update: no event
            assert [x[1:] for x in seen if x[0] == name] == [
                ("CREATE", "IN_PROGRESS"),
                ("CREATE", "COMPLETE"),
                ("DELETE", "IN_PROGRESS"),
                ("DELETE", "COMPLETE"),
            ]
        b_done = next(m for m in made if m["resource_name"] == "b")
        assert b_done["stack_identity"] == sid and b_done["stack_name"] == "announced"
        assert b_done["tenant_id"] == p.ctx.project_id
        assert b_done["resource_type"] == "OS::Heat::Value"
        assert b_done["event_id"] in {e.id for e in listed}
    finally:
        await p.close()


async def test_a_failed_resource_and_its_stack_announce_the_error_with_the_reason(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        t = hot({"bad": {"type": "OS::Heat::TestResource", "properties": {"fail": True}}})
        sid = await create(p, "failing", t)
        done = await settle(p, sid)
        assert (done.action, done.status) == ("CREATE", "FAILED")
        notes = await outbox(p, sid)
        bad = [n for n in notes if n.event_type == "orchestration.resource.create.error"]
        assert len(bad) == 1
        assert bad[0].payload["resource_name"] == "bad"
        assert bad[0].payload["resource_status"] == "FAILED"
        assert "Test Resource failed" in bad[0].payload["resource_status_reason"]
        assert notes[-1].event_type == "orchestration.stack.create.error"
        assert notes[-1].payload["state"] == "CREATE_FAILED"
        assert notes[-1].payload["state_reason"] == done.status_reason
    finally:
        await p.close()


async def test_a_wide_steps_notifications_are_one_insert_with_its_events(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "wide", hot({f"vm{i}": server() for i in range(40)}))
        before = len(await outbox(p, sid))  # CREATE_IN_PROGRESS, from the API's create
        with statements(p.db) as seen:
            assert await p.worker.orchestration.run_once() == 1
        inserts = [q.split(" (")[0] for q in seen if q.startswith("INSERT INTO ")]
        assert inserts.count("INSERT INTO outbox") == 1
        assert inserts.count("INSERT INTO stack_events") == 1
        notes = await outbox(p, sid)
        assert len(notes) - before == 40
        assert {n.event_type for n in notes[before:]} == {"orchestration.resource.create.start"}
        assert len(notes) == len(await events(p, sid))
    finally:
        await p.close()


async def test_a_rolled_back_change_leaves_no_notification(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "kept", hot({"a": _value("1")}))
        assert (await settle(p, sid)).status == "COMPLETE"
        written = await count_outbox(p)
        row = (await resources(p, sid))["a"]
        for held in (False, True):  # outside a step (the API), and a step's held events
            with pytest.raises(Boom):
                async with p.db.session() as s:
                    if held:
                        hold_events(s)
                    found = await s.get(Stack, sid)
                    res = await s.get(StackResource, row.id)
                    assert found is not None and res is not None
                    stack_event(s, found, "UPDATE", "IN_PROGRESS", "started", p.clock.now())
                    resource_event(s, found, res, "state changed", p.clock.now())
                    await write_events(s, stop=True)
                    await s.flush()
                    raise Boom
        with pytest.raises(Boom):
            async with p.db.session() as s:
                svc = StackService(p.settings, p.clock)
                await svc.create(s, p.ctx, "gone", {"template": hot({"a": _value("1")})})
                raise Boom
        assert await count_outbox(p) == written
    finally:
        await p.close()


async def test_a_webhook_subscribed_to_stack_events_receives_them(
    db_url: str, tmp_path: Path
) -> None:
    p = await notify_plane(db_url, tmp_path, CLOUDS)
    rx = Receiver()
    try:
        await rx.start()
        await subscribe(p, rx.url, event_types=("orchestration.stack.*",))
        sid = await create(p, "hooked", hot({"a": _value("1")}))
        assert (await settle(p, sid)).status == "COMPLETE"
        for _ in range(10):
            if len(rx.got) >= 2:
                break
            await p.worker.notifications.run_once()
            p.clock.advance(1)
        got = [r.event for r in rx.got]
        assert [e["type"] for e in got] == [
            "orchestration.stack.create.start",
            "orchestration.stack.create.end",
        ]
        assert {e["subject"] for e in got} == {f"stack/{sid}"}
        assert got[1]["data"]["state"] == "CREATE_COMPLETE"
        assert got[1]["data"]["stack_identity"] == sid
        assert got[1]["projectid"] == p.ctx.project_id
    finally:
        await rx.stop()
        await p.close()


async def test_a_signal_is_announced_as_the_resources_signal_event(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "signalled", hot({"a": _value("1")}))
        assert (await settle(p, sid)).status == "COMPLETE"
        await send_signal(p, sid, "nope")
        await p.worker.orchestration.run_once()  # the engine acts on the signal
        note = (await outbox(p, sid))[-1]
        assert note.event_type == "orchestration.resource.signal.end"
        assert note.payload["resource_name"] == "nope"
        assert note.payload["resource_status_reason"] == "Signal: ignored: the resource is gone"
        assert note.payload["event_id"] == (await events(p, sid))[-1].id
    finally:
        await p.close()
