"""No oversubscription: two worker processes place 500 concurrent boots (on SQLite and
PostgreSQL).

`private` fits exactly 50 tiny servers and the burst threshold is 100%, so exactly 50 must
land there and 450 on `public`, whatever the two workers interleave. A 51st create sent to
`private` would be refused by the cloud and fail over to `public`, and the end state would
look right: so the test also reads `private`'s own create log, which must hold no refusal,
and the logs of both clouds, which must show no server created twice. On Nova-like clouds
(a create is a lookup and then a create) and on atomic ones (EC2 with a ClientToken).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from canopy.providers.registry import build_drivers
from canopy.providers.sim.creates import Outcome, created_more_than_once
from canopy.providers.sim.driver import SimCompute
from canopy.services.servers import CreateServer, ServerService
from canopy.store.models import Cloud, Placement, Server

from .procs import WorkerProcess, installed

pytestmark = pytest.mark.slow

N = 50


@pytest.mark.parametrize("atomic", [False, True], ids=["nova", "atomic"])
async def test_two_workers_never_oversubscribe(db_url: str, tmp_path: Path, atomic: bool) -> None:
    mode = f"atomic_create = {str(atomic).lower()}"
    cfg = tmp_path / "canopy.toml"
    cfg.write_text(
        f"""data_dir = "{tmp_path}"
[database]
url = "{db_url}"
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
{mode}
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
{mode}
"""
    )
    settings, clock, db, ctx = await installed(cfg, "load")
    svc = ServerService(db, settings, clock)
    workers = [WorkerProcess(cfg, tmp_path / f"worker{i}.log") for i in range(2)]
    drivers = build_drivers(settings, clock)
    private, public = drivers["private"], drivers["public"]
    assert isinstance(private, SimCompute) and isinstance(public, SimCompute)
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
        logs = await private.create_log() + await public.create_log()
    finally:
        for w in workers:
            w.stop()
        for d in drivers.values():
            await d.close()

    refused = [str(r) for r in logs if r.cloud == "private" and r.outcome is Outcome.REFUSED]
    assert not refused, "private was oversubscribed: it refused\n" + "\n".join(refused)
    twice = created_more_than_once(logs)
    assert not twice, "created twice:\n" + "\n".join(str(r) for rs in twice.values() for r in rs)
    async with db.read() as s:
        where = Counter((await s.execute(select(Server.cloud))).scalars())
        placed = select(Placement.worker).where(Placement.cloud.is_not(None))
        deciders = set((await s.execute(placed)).scalars())
        waited = set(
            (await s.execute(select(Placement.worker).where(Placement.cloud.is_(None)))).scalars()
        )
        cloud = await s.get(Cloud, "private")
    assert where == Counter({"private": N, "public": 500 - N})
    assert cloud is not None and cloud.vcpus_claimed == N == cloud.vcpus_capacity
    assert len(await private.all_servers()) == N
    assert len(deciders) == 2, "both workers should have placed servers"
    # A decision to wait (private full, public not read yet) names its worker too.
    assert "" not in deciders | waited
    await db.dispose()
