"""No oversubscription: two worker processes on PostgreSQL place 500 concurrent boots.

`private` fits exactly 50 tiny servers and the burst threshold is 100%, so exactly 50 must
land there and 450 on `public`, whatever the two workers interleave.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from canopy.bootstrap import ensure_project, open_database, seed
from canopy.config import load_settings
from canopy.domain.clock import SystemClock
from canopy.domain.context import RequestContext
from canopy.providers.registry import build_drivers
from canopy.providers.sim.driver import SimCompute
from canopy.services.servers import CreateServer, ServerService
from canopy.store.models import Cloud, Placement, Server

from .procs import WorkerProcess

pytestmark = pytest.mark.slow

N = 50


@pytest.fixture
def pg_db_url(pg_url: str) -> str:
    from tests.conftest import empty_database

    asyncio.run(empty_database(pg_url))
    return pg_url


async def test_two_workers_never_oversubscribe(pg_db_url: str, tmp_path: Path) -> None:
    cfg = tmp_path / "canopy.toml"
    cfg.write_text(
        f"""data_dir = "{tmp_path}"
[database]
url = "{pg_db_url}"
[scheduler]
burst_threshold = 1.0
max_spend_per_hour = 1000.0
[controllers]
batch_size = 8
poll_seconds = 0.02
sync_seconds = 0.3
[[clouds]]
name = "private"
tier = 0
[clouds.sim]
hosts = 1
host_vcpus = {N}
host_ram_mb = 1048576
boot_seconds = 0.3
api_latency_ms = 3
[[clouds]]
name = "public"
tier = 1
[clouds.sim]
hosts = 100
host_vcpus = 64
host_ram_mb = 1048576
boot_seconds = 0.3
api_latency_ms = 3
price_per_vcpu_hour = 0.01
"""
    )
    settings = load_settings(cfg, env={})
    clock = SystemClock()
    db = await open_database(settings)
    await seed(db, settings, clock)
    project = await ensure_project(
        db, clock, "load", quotas={"instances": -1, "cores": -1, "ram": -1}
    )
    svc = ServerService(db, settings, clock)
    ctx = RequestContext(project_id=project)
    workers = [WorkerProcess(cfg, tmp_path / f"worker{i}.log") for i in range(2)]
    drivers = build_drivers(settings, clock)
    private = drivers["private"]
    assert isinstance(private, SimCompute)
    try:
        for w in workers:
            w.start()
        # 500 boots arrive together, as 10 requests of 50.
        await asyncio.gather(
            *(
                svc.create(
                    ctx,
                    CreateServer(
                        name=f"burst{i}",
                        flavor="m1.tiny",
                        image="cirros",
                        min_count=50,
                        max_count=50,
                    ),
                )
                for i in range(10)
            )
        )
        deadline = time.monotonic() + 180
        peak_claimed = peak_remote = 0
        while True:
            async with db.read() as s:
                cloud = await s.get(Cloud, "private")
                assert cloud is not None
                peak_claimed = max(peak_claimed, cloud.vcpus_claimed)
                statuses = Counter((await s.execute(select(Server.status))).scalars())
            peak_remote = max(peak_remote, len(await private.all_servers()))
            assert peak_claimed <= N and peak_remote <= N, "private was oversubscribed"
            if statuses.get("ACTIVE", 0) == 500:
                break
            for w in workers:
                assert w.alive(), w.log.read_text()[-2000:]
            assert time.monotonic() < deadline, f"not all ACTIVE: {statuses}"
            await asyncio.sleep(0.2)
    finally:
        for w in workers:
            w.stop()
        for d in drivers.values():
            await d.close()

    async with db.read() as s:
        where = Counter((await s.execute(select(Server.cloud))).scalars())
        deciders = set((await s.execute(select(Placement.worker))).scalars())
        cloud = await s.get(Cloud, "private")
    assert where == Counter({"private": N, "public": 500 - N})
    assert cloud is not None and cloud.vcpus_claimed == N == cloud.vcpus_capacity
    assert len(await private.all_servers()) == N
    assert len(deciders) == 2, "both workers should have placed servers"
    await db.dispose()
