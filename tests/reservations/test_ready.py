"""Servers ready at the start: a lease's servers boot ahead of it, on capacity held for them.

The sim boots a server in 8 s; with no boot history the lead is the default (20 s) plus
the margin (5 s). Time is the fake clock, moved a second a worker pass.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select

from canopy.domain.errors import Conflict, InvalidRequest
from canopy.reservations import requests
from canopy.reservations.ready import readiness
from canopy.store.models import Claim, Image, Lease, LeaseServer, Server
from tests.controllers.harness import Plane, make_plane

from .helpers import body, create, leases, when

PRIVATE = """
[reservations]
default_boot_seconds = 20
boot_margin_seconds = 5

[[clouds]]
name = "private"
tier = 0
[clouds.sim]
hosts = 1
host_vcpus = 8
host_ram_mb = 16384
boot_seconds = 8
api_latency_ms = 0
"""


def carrying(name: str, start: datetime, end: datetime, n: int = 2, **kw: Any) -> dict[str, Any]:
    b = body(name, start, end, amount=n)
    b["servers"] = [{"name": "web", "image": "cirros", "count": n, **kw}]
    return b


async def _lease(p: Plane, lease_id: str) -> Lease:
    async with p.db.read() as s:
        lease = await s.get(Lease, lease_id)
        assert lease is not None
        return lease


async def _carried(p: Plane, lease_id: str) -> list[Server]:
    async with p.db.read() as s:
        [c] = (
            await s.execute(select(LeaseServer).where(LeaseServer.lease_id == lease_id))
        ).scalars()
        if not c.server_ids:
            return []
        q = select(Server).where(Server.id.in_(c.server_ids))
        return list((await s.execute(q)).scalars())


async def _run_to(p: Plane, at: datetime) -> None:
    """Worker passes up to just before `at`, then the clock exactly at it: ten seconds
    apart until two minutes before `at` (every boot lead here is well inside that), then a
    second apart."""
    while p.clock.now() + timedelta(minutes=2) < at:
        await p.step(advance=10.0)
    while p.clock.now() + timedelta(seconds=1) < at:
        await p.step(advance=1.0)
    p.clock.advance((at - p.clock.now()).total_seconds())


async def test_the_servers_are_active_at_the_start_instant(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=PRIVATE)
    try:
        start = p.clock.now() + timedelta(minutes=10)
        lease = await create(p, carrying("ready", start, start + timedelta(hours=1)))
        assert lease.boot_lead_seconds == 25.0  # the default boot time plus the margin
        assert lease.boot_at == start - timedelta(seconds=25)
        assert lease.next_attempt_at == lease.boot_at
        async with p.db.read() as s:
            windows = sorted(
                (c.starts_at, c.ends_at, c.vcpus)
                for c in (await s.execute(select(Claim))).scalars()
            )
        # The early claim for the two servers, then the reservation's own.
        assert windows == [(lease.boot_at, start, 2), (start, start + timedelta(hours=1), 2)]

        await _run_to(p, lease.boot_at - timedelta(seconds=1))
        await p.worker.leases.run_once()
        assert await _carried(p, lease.id) == []  # not before its time
        await _run_to(p, start)
        assert await p.worker.leases.run_once() == 1
        servers = await _carried(p, lease.id)
        assert [sv.status for sv in servers] == ["ACTIVE", "ACTIVE"]
        assert all(sv.launched_at is not None and sv.launched_at <= start for sv in servers)
        assert {sv.metadata_["canopy_lease"] for sv in servers} == {lease.id}
        row = await _lease(p, lease.id)
        assert row.status == "ACTIVE"
        async with p.db.read() as s:
            [shown] = (await readiness(s, [row])).values()
        assert shown["ready_on_time"] is True
        assert shown["started_early_seconds"] == 25.0
        assert sorted(shown["servers"][0]["ids"]) == sorted(sv.id for sv in servers)
        # They are the reservation's: no room for a third.
        with pytest.raises(Exception, match="holds 2 servers and 2 in use"):
            await p.create(1, flavor=servers[0].flavor_id)
    finally:
        await p.close()


async def test_the_lead_is_the_observed_p95_boot_time_plus_the_margin(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=PRIVATE)
    try:
        ids = await p.create(3, name="before")
        await p.run_until(lambda: _all_active(p, ids))
        async with p.db.read() as s:
            rows = list((await s.execute(select(Server).where(Server.id.in_(ids)))).scalars())
        took = sorted(
            (sv.launched_at - sv.created_at).total_seconds() for sv in rows if sv.launched_at
        )
        assert len(took) == 3 and took[-1] >= 8.0  # at least the sim's boot
        start = p.clock.now().replace(second=0, microsecond=0) + timedelta(minutes=10)
        lease = await create(p, carrying("ready", start, start + timedelta(hours=1), n=1))
        # p95 of three boots is the slowest of them.
        assert lease.boot_lead_seconds == took[-1] + 5.0
    finally:
        await p.close()


async def _all_active(p: Plane, ids: list[str]) -> bool:
    return {sv.status for sv in await p.servers() if sv.id in ids} == {"ACTIVE"}


async def test_the_early_claim_never_takes_another_lease_s_capacity(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=PRIVATE)
    try:
        t = p.clock.now() + timedelta(hours=2)
        before, after = t - timedelta(minutes=30), t + timedelta(hours=1)
        # The cloud is full until t: the servers of a lease from t cannot boot early.
        full = await create(p, body("full", before, t, amount=8))
        with pytest.raises(Conflict, match="boot the lease's servers 25 s before its start"):
            await create(p, carrying("early", t, after))
        await create(p, body("plain", t, after, amount=2))  # without servers it fits
        async with p.db.session() as s:
            await leases(p).delete(s, p.ctx, full.id)
        # The other way round: the early claim, held first, keeps the others out of it.
        await create(p, carrying("early", t, after))
        with pytest.raises(Conflict, match="Not enough resources"):
            await create(p, body("full", before, t, amount=8))
        await create(p, body("six", before, t, amount=6))
    finally:
        await p.close()


async def test_moving_the_start_moves_the_early_boot(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=PRIVATE)
    try:
        start = p.clock.now() + timedelta(hours=1)
        lease = await create(p, carrying("ready", start, start + timedelta(hours=1)))
        later = start + timedelta(minutes=30)
        async with p.db.session() as s:
            moved = await leases(p).update(s, p.ctx, lease.id, {"start_date": when(later)})
        assert moved.boot_at == later - timedelta(seconds=25)
        assert moved.next_attempt_at == moved.boot_at
        async with p.db.read() as s:
            early = [
                (c.starts_at, c.ends_at)
                for c in (await s.execute(select(Claim))).scalars()
                if c.ends_at == later
            ]
        assert early == [(moved.boot_at, later)]
    finally:
        await p.close()


@pytest.mark.parametrize(
    ("servers", "message"),
    [
        ("web", "must be a list"),
        ([{"name": "a"}], "field image must be a non-empty string"),
        ([{"name": "a", "image": "cirros", "count": 3}], "need 3 of reservation 0, which holds 2"),
        ([{"name": "a", "image": "cirros", "reservation": 1}], "the lease has 1 reservation"),
        ([{"name": "a", "image": "cirros", "flavor": "x"}], "Unknown lease server field"),
        ([{"name": "a", "image": "cirros", "user_data": 5}], "user_data must be a string"),
    ],
)
def test_bad_servers_are_refused(servers: Any, message: str) -> None:
    now = datetime(2026, 1, 1)
    b = body("l", now + timedelta(hours=1), now + timedelta(hours=2), amount=2)
    b["servers"] = servers
    with pytest.raises(InvalidRequest, match=message):
        requests.lease_create(b, now)


async def test_servers_that_cannot_be_made_do_not_hold_the_start_back(
    db_url: str, tmp_path: Path
) -> None:
    """The image is gone by the boot: the lease is degraded, starts on time, and says its
    servers were not ready."""
    p = await make_plane(db_url, tmp_path, toml=PRIVATE)
    try:
        start = p.clock.now() + timedelta(minutes=10)
        lease = await create(p, carrying("ready", start, start + timedelta(hours=1)))
        async with p.db.session() as s:
            [c] = (await s.execute(select(LeaseServer))).scalars()
            await s.execute(delete(Image).where(Image.id == c.image_id))
        await _run_to(p, start)
        assert await p.worker.leases.run_once() == 1
        row = await _lease(p, lease.id)
        assert row.status == "ACTIVE" and row.degraded and row.booted_at is not None
        assert await _carried(p, lease.id) == []
        async with p.db.read() as s:
            [shown] = (await readiness(s, [row])).values()
        assert shown["ready_on_time"] is False
    finally:
        await p.close()
