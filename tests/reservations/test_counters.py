"""Lease starts and ends move the cloud counters by their own claims, never by a recount:
exact with two workers stepping leases while servers are placed, and after a step that
failed midway (rolled back, then run again)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from canopy.reservations import controller as lease_loop
from canopy.store import claim_counts
from canopy.store.claims import usage_at
from canopy.store.db import Database
from canopy.store.models import Claim, Cloud, Lease
from tests.controllers.harness import Plane, make_plane

from .helpers import body, create, second_worker

TWO = """
[[clouds]]
name = "private"
tier = 0
[clouds.sim]
hosts = 4
host_vcpus = 32
host_ram_mb = 131072
boot_seconds = 1
api_latency_ms = 0
"""


async def _exact(p: Plane, *, settled: bool = True) -> int:
    """The counters are the counted claims, and (`settled`: every lease due has been
    stepped) those are the claims in use now."""
    async with p.db.read() as s:
        cloud = await s.get(Cloud, "private")
        used = (await usage_at(s, ["private"], p.clock.now()))["private"]
        counted = await s.scalar(
            select(func.coalesce(func.sum(Claim.vcpus), 0)).where(Claim.counted.is_(True))
        )
        assert await claim_counts.drifts(s) == []
    assert cloud is not None
    assert cloud.vcpus_claimed == counted
    if settled:
        assert cloud.vcpus_claimed == used.vcpus
        assert cloud.instances_claimed == used.instances
    return cloud.vcpus_claimed


async def test_two_workers_stepping_leases_while_servers_are_placed(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=TWO, overrides={"controllers": {"batch_size": 3}})
    other = Database(db_url)
    try:
        second = second_worker(p, other, 3)
        t0 = p.clock.now()
        start, end = t0 + timedelta(minutes=2), t0 + timedelta(minutes=30)
        for i in range(10):
            await create(p, body(f"l{i}", start, end, amount=2))
        await p.create(2, name="early", flavor="m1.tiny")
        await p.worker.placement.run_once()
        assert await _exact(p) == 2
        p.clock.advance(120)
        await p.create(4, name="late", flavor="m1.tiny")
        await asyncio.gather(
            p.worker.leases.run_once(),
            second.leases.run_once(),
            p.worker.placement.run_once(),
            second.placement.run_once(),
        )
        async with p.db.read() as s:
            statuses = set((await s.execute(select(Lease.status))).scalars())
        assert statuses == {"ACTIVE"}
        assert await _exact(p) == 2 + 20 + 4
        p.clock.advance(28 * 60)  # the ends, as concurrently
        await asyncio.gather(p.worker.leases.run_once(), second.leases.run_once())
        assert await _exact(p) == 6
    finally:
        await other.dispose()
        await p.close()


async def test_a_step_that_fails_midway_leaves_the_counters_right(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = await make_plane(db_url, tmp_path, toml=TWO)
    try:
        t0 = p.clock.now()
        start = t0 + timedelta(minutes=1)
        ids = [
            (await create(p, body(f"l{i}", start, start + timedelta(hours=1)))).id for i in range(3)
        ]
        p.clock.advance(60)
        real = claim_counts.apply

        async def broken(*_: object) -> None:
            raise RuntimeError("lost the connection")

        # The claims are flipped and the statuses set, then the counters' write fails:
        # the batch rolls back, then each lease alone, which backs off.
        monkeypatch.setattr(lease_loop.claim_counts, "apply", broken)
        await p.worker.leases.run_once()
        async with p.db.read() as s:
            statuses = set(
                (await s.execute(select(Lease.status).where(Lease.id.in_(ids)))).scalars()
            )
        assert statuses == {"PENDING"}
        assert await _exact(p, settled=False) == 0  # nothing counted: the starts come later
        monkeypatch.setattr(lease_loop.claim_counts, "apply", real)
        p.clock.advance(60)  # past the backoff: the next pass runs the steps again
        await p.worker.leases.run_once()
        assert await _exact(p) == 3
    finally:
        await p.close()
