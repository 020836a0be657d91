"""Inventory over many clouds with a small connection pool: every cloud's pass runs at
once (their cloud calls overlap), but their transactions take turns on the runtime's
database slots, so the pool is never asked for more connections than it holds."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from canopy.bootstrap import seed
from canopy.config import load_settings
from canopy.controllers.inventory import InventoryController
from canopy.controllers.runtime import Runtime
from canopy.domain.clock import FakeClock
from canopy.providers.registry import build_drivers
from canopy.store.db import Database
from canopy.store.models import Cloud, Job

CLOUDS = 200


async def test_a_forced_pass_over_200_clouds_fits_a_pool_of_one(
    db_url: str, tmp_path: Path
) -> None:
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
    # One connection, one more in overflow, and a checkout that waits 1 s at most: 200
    # transactions at once would time out in the pool (on PostgreSQL; SQLite's pool keeps 5).
    db = Database(db_url, pool_size=1, pool_timeout=1.0)
    drivers = build_drivers(settings, clock)
    try:
        await seed(db, settings, clock)
        rt = Runtime(db=db, settings=settings, drivers=drivers, clock=clock, worker_id="w")
        assert await InventoryController(rt).run_once(force=True) == CLOUDS
        async with db.read() as s:
            rows = list((await s.execute(select(Cloud))).scalars())
            jobs = list(
                (await s.execute(select(Job).where(Job.name.like("inventory:%")))).scalars()
            )
        assert len(rows) == CLOUDS
        assert all(c.capacity_updated_at is not None and c.vcpus_capacity for c in rows)
        assert len(jobs) == CLOUDS
        assert all(j.runs == 1 and j.claimed_by is None and j.last_error is None for j in jobs)
    finally:
        for d in drivers.values():
            await d.close()
        await db.dispose()
