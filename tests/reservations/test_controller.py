"""Leases start and end on time, through the controller runtime on due rows.

Time is a FakeClock: it moves only when a test advances it or when something sleeps on
it (the sim cloud's API latency), so "late" is measured exactly.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from canopy.domain.errors import QuotaError
from canopy.domain.states import DesiredState
from canopy.store.models import Claim, Cloud, Lease, LeaseEvent, Placement, Reservation, Server
from tests.controllers.harness import Plane, make_plane
from tests.store.helpers import server_row

from .helpers import CLOUDS, body, create

MANY = """
[scheduler]
burst_threshold = 1.0

[[clouds]]
name = "slow"
tier = 0
[clouds.sim]
hosts = 1
host_vcpus = 20
host_ram_mb = 65536
boot_seconds = 1
api_latency_ms = 3000

[[clouds]]
name = "big"
tier = 1
[clouds.sim]
hosts = 100
host_vcpus = 64
host_ram_mb = 262144
boot_seconds = 1
api_latency_ms = 0
"""


async def _status(p: Plane, lease_id: str) -> str:
    async with p.db.read() as s:
        lease = await s.get(Lease, lease_id)
        assert lease is not None
        return lease.status


async def test_a_lease_starts_and_ends_at_its_dates(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        t0 = p.clock.now()
        start, end = t0 + timedelta(minutes=10), t0 + timedelta(minutes=70)
        lease = await create(p, body("l", start, end, amount=2, vcpus=2, memory_mb=2048))
        leases = p.worker.leases
        assert await leases.run_once() == 0
        assert leases.next_due_in(p.clock.now()) == 600.0  # the loop sleeps until then
        p.clock.advance(599.9)
        assert await leases.run_once() == 0
        assert await _status(p, lease.id) == "PENDING"
        p.clock.advance(0.1)
        assert await leases.run_once() == 1
        assert await _status(p, lease.id) == "ACTIVE"
        async with p.db.read() as s:
            private = await s.get(Cloud, "private")
            [res] = (await s.execute(select(Reservation))).scalars()
        assert res.status == "active"
        assert private is not None and private.vcpus_claimed == 4  # in use from now
        # before_end (an hour before the end: here the start) ran with the start.
        assert leases.next_due_in(p.clock.now()) == 3600.0

        # Boot into the reservation: its slots, no claim of its own.
        sids = await p.create(2, name="in", flavor=res.id)
        with pytest.raises(QuotaError, match="holds 2 servers and 2 in use: no room for 1"):
            await p.create(1, name="past", flavor=res.id)
        # One that got past the check (a race): placement holds to the slots all the same.
        async with p.db.session() as s:
            raced = server_row(
                p.clock.now() + timedelta(seconds=1), flavor_id=res.id, project_id=p.ctx.project_id
            )
            s.add(raced)
        await p.worker.placement.run_once()
        async with p.db.read() as s:
            rows = {sv.id: sv for sv in (await s.execute(select(Server))).scalars()}
            own = await s.scalar(
                select(func.count()).select_from(Claim).where(Claim.server_id.is_not(None))
            )
            reasons = list(
                (
                    await s.execute(select(Placement.reason).where(Placement.server_id == raced.id))
                ).scalars()
            )
        assert own == 0
        assert [rows[i].cloud for i in sids] == ["private", "private"]
        assert rows[raced.id].status == "ERROR" and rows[raced.id].cloud is None
        assert "filter reservation removed every cloud" in reasons[0]

        p.clock.advance(3600)
        assert await leases.run_once() == 1
        assert await _status(p, lease.id) == "TERMINATED"
        async with p.db.read() as s:
            doomed = [
                sv for sv in (await s.execute(select(Server))).scalars() if sv.cloud is not None
            ]
            left = await s.scalar(select(func.count()).select_from(Claim))
            private = await s.get(Cloud, "private")
            done = list((await s.execute(select(LeaseEvent.status))).scalars())
        assert [sv.desired_state for sv in doomed] == [DesiredState.DELETED] * 2
        assert left == 0 and private is not None and private.vcpus_claimed == 0
        assert done == ["DONE"] * 3
        assert leases.next_due_in(p.clock.now()) is None
    finally:
        await p.close()


async def test_200_leases_due_together_start_on_time_beside_a_slow_teardown(
    db_url: str, tmp_path: Path
) -> None:
    """200 leases start in the second one lease ends; that lease's 20 servers are deleted
    on a cloud whose every API call takes 3 s. No start is a second late."""
    p = await make_plane(db_url, tmp_path, toml=MANY)
    try:
        t0 = p.clock.now()
        due = t0 + timedelta(hours=1)
        # The slow one: running now on the slow cloud, ends at `due`.
        slow = await create(p, body("slow", "now", due, amount=20))
        await p.worker.leases.run_once()
        async with p.db.read() as s:
            [res] = (
                await s.execute(select(Reservation).where(Reservation.lease_id == slow.id))
            ).scalars()
        assert [(x["cloud"], x["amount"]) for x in res.placement] == [("slow", 20)]
        await p.create(20, name="busy", flavor=res.id)
        for _ in range(5):
            await p.step(advance=0)
        ids = [
            (await create(p, body(f"l{i}", due, due + timedelta(hours=1)))).id for i in range(200)
        ]
        p.clock.advance((due - p.clock.now()).total_seconds())
        # One worker pass: the lease loop, then placement, provisioning and power (which
        # now deletes the slow lease's servers, 3 s a call on the fake clock).
        await p.worker.step()
        assert p.clock.now() > due + timedelta(seconds=2)  # the teardown did take time
        async with p.db.read() as s:
            starts = list(
                (
                    await s.execute(
                        select(LeaseEvent).where(
                            LeaseEvent.event_type == "start_lease",
                            LeaseEvent.lease_id.in_(ids),
                        )
                    )
                ).scalars()
            )
            statuses = set(
                (await s.execute(select(Lease.status).where(Lease.id.in_(ids)))).scalars()
            )
        assert statuses == {"ACTIVE"} and len(starts) == 200
        late = max((e.done_at - e.time).total_seconds() for e in starts if e.done_at)
        assert late <= 1.0
        assert await _status(p, slow.id) == "TERMINATED"
    finally:
        await p.close()


async def test_a_step_cut_short_is_finished_by_the_next_worker(db_url: str, tmp_path: Path) -> None:
    """A worker that leased a due lease and died: after its lease on the row runs out,
    another worker starts the lease (the dead one's step rolled back with it)."""
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        t0 = p.clock.now()
        lease = await create(p, body("l", t0 + timedelta(minutes=1), t0 + timedelta(hours=2)))
        p.clock.advance(60)
        async with p.db.session() as s:  # the dead worker's lease on the row
            row = await s.get(Lease, lease.id)
            assert row is not None
            row.claimed_by, row.claim_expires_at = (
                "dead-worker",
                p.clock.now() + timedelta(seconds=30),
            )
        assert await p.worker.leases.run_once() == 0
        assert await _status(p, lease.id) == "PENDING"
        p.clock.advance(31)
        assert await p.worker.leases.run_once() == 1
        assert await _status(p, lease.id) == "ACTIVE"
    finally:
        await p.close()
