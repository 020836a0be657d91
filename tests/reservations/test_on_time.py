"""Many leases due in the same second start on time, whatever their neighbours' teardown.

The fake clock does not move while the database works, so a lease loop that took one
transaction per lease would look punctual here. `costly` charges every SQL statement a
fixed time on the fake clock (1 ms: about what a short statement and its round trip cost),
so lateness follows the work a pass does, as it would in real time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, select

from canopy.domain.states import DesiredState
from canopy.store.models import InstanceAction, Lease, LeaseEvent, Reservation, Server
from tests.controllers.harness import Plane, make_plane

from .helpers import body, create
from .test_controller import MANY

STATEMENT_MS = 1.0


@contextmanager
def costly(p: Plane, ms: float = STATEMENT_MS) -> Iterator[list[int]]:
    """Every statement run inside the block moves the fake clock on by `ms`."""
    count = [0]

    def charge(*_: Any) -> None:
        count[0] += 1
        p.clock.advance(ms / 1000)

    engine = p.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", charge)
    try:
        yield count
    finally:
        event.remove(engine, "before_cursor_execute", charge)


async def _starts(p: Plane, ids: list[str]) -> list[LeaseEvent]:
    async with p.db.read() as s:
        return list(
            (
                await s.execute(
                    select(LeaseEvent).where(
                        LeaseEvent.event_type == "start_lease", LeaseEvent.lease_id.in_(ids)
                    )
                )
            ).scalars()
        )


async def _many(p: Plane, prefix: str, at: datetime, n: int) -> list[str]:
    return [
        (await create(p, body(f"{prefix}{i}", at, at + timedelta(hours=1)))).id for i in range(n)
    ]


async def _slow_lease(p: Plane, end: datetime) -> tuple[str, list[str]]:
    """A lease running now on the slow cloud, ending at `end`, with 20 ACTIVE servers."""
    lease = await create(p, body("slow", "now", end, amount=20))
    await p.worker.leases.run_once()
    async with p.db.read() as s:
        [res] = (
            await s.execute(select(Reservation).where(Reservation.lease_id == lease.id))
        ).scalars()
    assert [(x["cloud"], x["amount"]) for x in res.placement] == [("slow", 20)]
    sids = await p.create(20, name="busy", flavor=res.id)
    await p.run_until(lambda: _all_active(p, sids), advance=1.0)
    return lease.id, sids


async def _all_active(p: Plane, sids: list[str]) -> bool:
    async with p.db.read() as s:
        q = select(func.count()).where(Server.id.in_(sids), Server.status == "ACTIVE")
        return int((await s.execute(q)).scalar_one()) == len(sids)


async def test_200_starts_and_a_slow_end_in_one_second_cost_a_few_transactions(
    db_url: str, tmp_path: Path
) -> None:
    """Due together: 200 starts and the end of a lease whose 20 servers are on a cloud that
    takes 3 s a call. Each statement costs the clock a millisecond, so a pass that stepped
    each lease in its own transaction (a dozen statements each) would start the last
    ones 2 s late; in batches every start is done within 1 s."""
    p = await make_plane(db_url, tmp_path, toml=MANY)
    try:
        due = p.clock.now() + timedelta(hours=1)
        slow, sids = await _slow_lease(p, due)
        ids = await _many(p, "l", due, 200)
        p.clock.advance((due - p.clock.now()).total_seconds())
        with costly(p) as statements:
            assert await p.worker.leases.run_once() == 201
        assert statements[0] < 200  # a few statements per batch, not a dozen per lease
        starts = await _starts(p, ids)
        assert len(starts) == 200 and all(e.done_at is not None for e in starts)
        late = [(e.done_at - e.time).total_seconds() for e in starts if e.done_at]
        assert max(late) <= 1.0, max(late)
        async with p.db.read() as s:
            statuses = set(
                (await s.execute(select(Lease.status).where(Lease.id.in_(ids)))).scalars()
            )
            ending = await s.get(Lease, slow)
            doomed = list((await s.execute(select(Server).where(Server.id.in_(sids)))).scalars())
        assert statuses == {"ACTIVE"}
        assert ending is not None and ending.status == "TERMINATED"
        assert {sv.desired_state for sv in doomed} == {DesiredState.DELETED}
    finally:
        await p.close()


async def test_a_teardown_stuck_on_its_cloud_never_holds_back_later_starts(
    db_url: str, tmp_path: Path
) -> None:
    """The slow lease's server deletes hang on their cloud (a call that does not return);
    200 leases due meanwhile start on time; when the cloud answers, every server of the
    ended lease is deleted there, each once."""
    p = await make_plane(db_url, tmp_path, toml=MANY)
    try:
        end = p.clock.now() + timedelta(hours=1)
        _, sids = await _slow_lease(p, end)
        ids = await _many(p, "l", end + timedelta(minutes=1), 200)
        sim = p.sim("slow")
        stuck = asyncio.Event()
        real_delete = sim.delete
        calls: list[str] = []

        async def hanging_delete(remote_id: str) -> None:
            calls.append(remote_id)
            await stuck.wait()
            await real_delete(remote_id)

        sim.delete = hanging_delete  # type: ignore[method-assign]
        p.clock.advance((end - p.clock.now()).total_seconds())
        assert await p.worker.leases.run_once() == 1  # the end
        assert await p.worker.power.run_once() == 20  # deletes started, all stuck
        for _ in range(10):
            await asyncio.sleep(0)
        assert p.worker.power.inflight == 20 and calls
        p.clock.advance(60)
        with costly(p):
            assert await p.worker.leases.run_once() == 200
        late = [(e.done_at - e.time).total_seconds() for e in await _starts(p, ids) if e.done_at]
        assert len(late) == 200 and max(late) <= 1.0
        assert p.worker.power.inflight == 20  # still stuck: nothing waited for them
        stuck.set()
        await p.worker.power.drain()
        await p.run_until(lambda: _gone(p, sids))
        assert sorted(calls) == sorted(set(calls)) and len(calls) == 20
        remote = await sim.all_servers()
        assert not [r for r in remote if r.canopy_id in sids]
        async with p.db.read() as s:
            deletes = (
                await s.execute(
                    select(InstanceAction.server_id, func.count())
                    .where(InstanceAction.server_id.in_(sids), InstanceAction.action == "delete")
                    .group_by(InstanceAction.server_id)
                )
            ).all()
        assert sorted(n for _, n in deletes) == [1] * 20
    finally:
        await p.close()


async def _gone(p: Plane, sids: list[str]) -> bool:
    async with p.db.read() as s:
        q = select(func.count()).where(Server.id.in_(sids), Server.status != "DELETED")
        return int((await s.execute(q)).scalar_one()) == 0
