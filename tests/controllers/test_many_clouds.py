"""Fan-outs over many clouds with a small connection pool: every cloud's inventory pass,
or sync pass, runs at once (their cloud calls overlap), but their transactions take turns
on the runtime's database slots (`Runtime.db_slot`), so the pool is never asked for more
connections than it holds. Before those slots, 200 clouds on a pool of one (and one more
in overflow) timed out in the pool on PostgreSQL and lost passes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from canopy.bootstrap import seed
from canopy.config import load_settings
from canopy.controllers.inventory import InventoryController
from canopy.controllers.runtime import Runtime
from canopy.controllers.sync import SyncController
from canopy.controllers.sync_passes import SyncPasses
from canopy.domain.clock import FakeClock
from canopy.providers.registry import build_drivers
from canopy.store.db import Database
from canopy.store.models import Cloud, Job

CLOUDS = 200


@pytest.fixture
async def rt(db_url: str, tmp_path: Path) -> AsyncIterator[Runtime]:
    clouds = [
        {"name": f"c{i:03d}", "driver": "sim", "tier": 1, "sim": {"hosts": 2}}
        for i in range(CLOUDS)
    ]
    settings = load_settings(
        None,
        env={},
        overrides={"data_dir": str(tmp_path), "database": {"url": db_url}, "clouds": clouds},
    )
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    # One connection, one more in overflow, and a checkout that waits 1 s at most (on
    # PostgreSQL; SQLite's pool keeps 5).
    db = Database(db_url, pool_size=1, pool_timeout=1.0)
    drivers = build_drivers(settings, clock)
    try:
        await seed(db, settings, clock)
        yield Runtime(db=db, settings=settings, drivers=drivers, clock=clock, worker_id="w")
    finally:
        for d in drivers.values():
            await d.close()
        await db.dispose()


async def _jobs(rt: Runtime, kind: str) -> list[Job]:
    async with rt.db.read() as s:
        q = select(Job).where(Job.name.like(f"{kind}:%"))
        return list((await s.execute(q)).scalars())


async def test_a_forced_inventory_of_200_clouds_fits_a_pool_of_one(rt: Runtime) -> None:
    assert await InventoryController(rt).run_once(force=True) == CLOUDS
    async with rt.db.read() as s:
        rows = list((await s.execute(select(Cloud))).scalars())
    assert len(rows) == CLOUDS
    assert all(c.capacity_updated_at is not None and c.vcpus_capacity for c in rows)
    jobs = await _jobs(rt, "inventory")
    assert len(jobs) == CLOUDS
    assert all(j.runs == 1 and j.claimed_by is None and j.last_error is None for j in jobs)


async def test_sync_passes_over_200_clouds_fit_a_pool_of_one(rt: Runtime) -> None:
    passes = SyncPasses(SyncController(rt))
    assert await passes.start() == CLOUDS
    await passes.drain()
    jobs = await _jobs(rt, "sync")
    assert len(jobs) == CLOUDS
    assert all(j.runs == 1 and j.claimed_by is None and j.last_error is None for j in jobs)
