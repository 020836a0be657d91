"""Rollback: a failed create deletes what it made; a failed (or cancelled) update goes back
to the previous template's resources, the very ones it replaced; events for each step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from canopy.orchestration.service import StackService
from canopy.orchestration.stack_actions import act
from tests.controllers.harness import Plane, make_plane

from .helpers import CLOUDS, create, events, hot, live_servers, resources, server, settle

FAIL = {"type": "OS::Heat::TestResource", "properties": {"fail": True}}


async def update(p: Plane, sid: str, template: dict[str, Any], **body: Any) -> None:
    async with p.db.session() as s:
        svc = StackService(p.settings, p.clock)
        stack = await svc.find(s, p.ctx.project_id, sid, lock=True)
        await svc.update(s, p.ctx, stack, {"template": template, **body}, patch=False)


async def stack_events(p: Plane, sid: str, name: str) -> list[tuple[str, str]]:
    return [(e.action, e.status) for e in await events(p, sid) if e.resource_name == name]


async def test_a_failed_create_rolls_back_everything_it_made(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        t = hot(
            {
                "vm": server(),
                "booting": server(),
                "bad": {**FAIL, "depends_on": ["vm"]},
                "never": server(metadata={"x": {"get_attr": ["bad", "output"]}}),
            }
        )
        sid = await create(p, "undo", t, disable_rollback=False)
        done = await settle(p, sid)
        assert (done.action, done.status) == ("ROLLBACK", "COMPLETE"), done.status_reason
        assert done.status_reason == "Stack ROLLBACK completed successfully"
        assert await live_servers(p) == []  # the ACTIVE one and any still booting: gone
        assert await resources(p, sid) == {}
        assert not done.deleted  # the stack stays, empty, as in Heat
        assert await stack_events(p, sid, "undo") == [
            ("CREATE", "IN_PROGRESS"),
            ("CREATE", "FAILED"),
            ("ROLLBACK", "IN_PROGRESS"),
            ("ROLLBACK", "COMPLETE"),
        ]
        failed = [e for e in await events(p, sid) if e.resource_name == "undo"][1]
        assert "resources.bad" in failed.status_reason  # the root cause stays in the events
        assert ("DELETE", "COMPLETE") in await stack_events(p, sid, "vm")
        assert await stack_events(p, sid, "never") == []
    finally:
        await p.close()


async def test_without_rollback_a_failed_create_keeps_what_it_made(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "keep", hot({"vm": server(), "bad": {**FAIL, "depends_on": ["vm"]}}))
        done = await settle(p, sid)
        assert (done.action, done.status) == ("CREATE", "FAILED")
        assert len(await live_servers(p)) == 1
    finally:
        await p.close()


ORIGINAL = hot(
    {
        "vm": server(flavor="m1.small"),
        "label": {"type": "OS::Heat::Value", "properties": {"value": "before"}},
        "gone_later": server(),
    }
)


async def _original(p: Plane) -> tuple[str, dict[str, str]]:
    sid = await create(p, "upd", ORIGINAL)
    assert (await settle(p, sid)).status == "COMPLETE"
    return sid, {n: r.server_id or "" for n, r in (await resources(p, sid)).items()}


async def test_a_failed_update_rolls_back_to_the_previous_resources(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid, before = await _original(p)
        changed = hot(
            {
                "vm": server(flavor="m1.medium"),  # replaced
                "label": {"type": "OS::Heat::Value", "properties": {"value": "after"}},
                "added": server(),
                "bad": {**FAIL, "depends_on": ["vm", "added"]},
            }
        )  # and gone_later removed
        await update(p, sid, changed, disable_rollback=False)
        done = await settle(p, sid)
        assert (done.action, done.status) == ("ROLLBACK", "COMPLETE"), done.status_reason
        assert done.template == ORIGINAL
        rows = await resources(p, sid)
        assert sorted(rows) == ["gone_later", "label", "vm"]
        # The very servers of before: the replaced one came back, nothing was rebuilt.
        assert rows["vm"].server_id == before["vm"]
        assert rows["gone_later"].server_id == before["gone_later"]
        assert rows["label"].attributes["value"] == "before"
        live = {s.id for s in await live_servers(p)}
        assert live == {before["vm"], before["gone_later"]}  # the new vm and `added`: gone
        assert await stack_events(p, sid, "upd") == [
            ("CREATE", "IN_PROGRESS"),
            ("CREATE", "COMPLETE"),
            ("UPDATE", "IN_PROGRESS"),
            ("UPDATE", "FAILED"),
            ("ROLLBACK", "IN_PROGRESS"),
            ("ROLLBACK", "COMPLETE"),
        ]
        assert done.previous is None
        # The stack is whole again: a later update works from the restored resources.
        await update(p, sid, ORIGINAL)
        again = await settle(p, sid)
        assert (again.action, again.status) == ("UPDATE", "COMPLETE")
        assert {s.id for s in await live_servers(p)} == live
    finally:
        await p.close()


async def test_an_update_removes_the_resources_the_template_no_longer_has(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid, before = await _original(p)
        smaller = hot({k: v for k, v in ORIGINAL["resources"].items() if k != "gone_later"})
        await update(p, sid, smaller)
        done = await settle(p, sid)
        assert (done.action, done.status) == ("UPDATE", "COMPLETE"), done.status_reason
        assert sorted(await resources(p, sid)) == ["label", "vm"]
        assert {s.id for s in await live_servers(p)} == {before["vm"]}
    finally:
        await p.close()


async def test_cancel_update_rolls_an_update_in_progress_back(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid, before = await _original(p)
        await update(p, sid, hot({**ORIGINAL["resources"], "vm": server(flavor="m1.medium")}))
        assert await p.worker.orchestration.run_once() == 1  # the new server is booting
        assert len(await live_servers(p)) == 3
        async with p.db.session() as s:
            svc = StackService(p.settings, p.clock)
            await act(
                s, await svc.find(s, p.ctx.project_id, sid, lock=True), "cancel_update", p.clock
            )
        done = await settle(p, sid)
        assert (done.action, done.status) == ("ROLLBACK", "COMPLETE"), done.status_reason
        assert (await resources(p, sid))["vm"].server_id == before["vm"]
        assert {s.id for s in await live_servers(p)} == {before["vm"], before["gone_later"]}
        assert done.template == ORIGINAL
    finally:
        await p.close()
