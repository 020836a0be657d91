"""Instance actions and events: an event lands on the latest action of its name."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.domain.clock import FakeClock
from canopy.store.db import Database
from canopy.store.events import add_event, start_action
from canopy.store.models import InstanceAction, InstanceActionEvent

from .helpers import add_servers, server_row


def _start(s: AsyncSession, sid: str, action: str, clock: FakeClock, req: str) -> InstanceAction:
    return start_action(
        s,
        server_id=sid,
        action=action,
        project_id="p1",
        user_id="u1",
        request_id=req,
        now=clock.now(),
    )


async def test_event_attaches_to_the_latest_action_of_that_name(
    seeded: Database, clock: FakeClock
) -> None:
    db = seeded
    async with db.session() as s:
        a, b = await add_servers(s, [server_row(clock.now()), server_row(clock.now())])
        _start(s, a, "reboot", clock, "req-1")
        clock.advance(1)
        _start(s, a, "reboot", clock, "req-2")
        clock.advance(1)
        _start(s, a, "stop", clock, "req-3")
        _start(s, b, "reboot", clock, "req-4")
        await s.flush()
    clock.advance(1)
    async with db.session() as s:
        await add_event(
            s,
            server_id=a,
            action="reboot",
            event="reboot",
            result="Success",
            details=None,
            now=clock.now(),
            host="private",
        )
        await add_event(
            s,
            server_id=a,
            action="stop",
            event="power_off",
            result=None,
            details="waiting",
            now=clock.now(),
        )
    async with db.read() as s:
        rows = (
            await s.execute(
                select(InstanceActionEvent, InstanceAction)
                .join(InstanceAction, InstanceAction.id == InstanceActionEvent.action_id)
                .order_by(InstanceActionEvent.id)
            )
        ).all()
    assert [(e.event, act.request_id, act.server_id) for e, act in rows] == [
        ("reboot", "req-2", a),  # the newer reboot, not req-1, and not b's req-4
        ("power_off", "req-3", a),
    ]
    done, running = rows[0][0], rows[1][0]
    assert done.result == "Success" and done.host == "private"
    assert done.start_time == clock.now() and done.finish_time == clock.now()
    assert running.result is None and running.finish_time is None
    assert running.details == "waiting"


async def test_event_without_a_matching_action_is_dropped(
    seeded: Database, clock: FakeClock
) -> None:
    db = seeded
    async with db.session() as s:
        [a] = await add_servers(s, [server_row(clock.now())])
        _start(s, a, "create", clock, "req-1")
    async with db.session() as s:
        await add_event(
            s,
            server_id=a,
            action="delete",
            event="x",
            result="Error",
            details=None,
            now=clock.now(),
        )
        await add_event(
            s,
            server_id="ghost",
            action="create",
            event="x",
            result="Error",
            details=None,
            now=clock.now(),
        )
    async with db.read() as s:
        n = (await s.execute(select(func.count()).select_from(InstanceActionEvent))).scalar_one()
    assert n == 0


async def test_action_times_round_trip(seeded: Database, clock: FakeClock) -> None:
    db = seeded
    async with db.session() as s:
        [a] = await add_servers(s, [server_row(clock.now())])
        act = _start(s, a, "create", clock, "req-9")
        await s.flush()
        act_id = act.id
    async with db.read() as s:
        stored = await s.get(InstanceAction, act_id)
    assert stored is not None
    assert stored.start_time == clock.now() == stored.updated_at
