"""Crash safety: kill -9 the controller process at random moments; everything converges.

While 200 servers boot and 100 of them are deleted, the `canopy worker` process is killed
with SIGKILL at least 5 times and restarted. Afterwards every server reaches its desired
state, no server exists twice in a cloud, and no remote server lacks a canopy row; and the
clouds' own create logs show that no server was ever created twice (the end state cannot
show that: leak collection deletes duplicates). Both kinds of cloud: Nova's, where a
create looks the canopy id up and then creates, so a create run twice at once makes two
servers, and EC2's with a ClientToken, where it cannot.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from canopy.providers.registry import build_drivers
from canopy.providers.sim.creates import CreateRecord, Outcome, created_more_than_once
from canopy.providers.sim.driver import SimCompute
from canopy.services.servers import CreateServer, ServerService
from canopy.store.models import Claim, Cloud, Server

from .procs import WorkerProcess, in_flight, installed

pytestmark = pytest.mark.slow

SIM = """atomic_create = {atomic}
boot_seconds = 3.0
boot_jitter = 0.5
api_latency_ms = 8
latency_jitter = 0.5
action_seconds = 0.2
lost_response_rate = 0.03
transient_error_rate = 0.02
"""


def config(tmp_path: Path, db_url: str, atomic: bool) -> Path:
    sim = SIM.format(atomic=str(atomic).lower())
    cfg = tmp_path / "canopy.toml"
    cfg.write_text(
        f"""data_dir = "{tmp_path}"
[database]
url = "{db_url}"
[controllers]
lease_seconds = 2.0
poll_seconds = 0.05
sync_seconds = 0.3
full_sync_every = 3
call_timeout_seconds = 1.0
backoff_base_seconds = 0.1
backoff_max_seconds = 1.0
[scheduler]
blocklist_seconds = 2
[[clouds]]
name = "private"
tier = 0
[clouds.sim]
hosts = 4
host_vcpus = 16
seed = 1
{sim}
[[clouds]]
name = "public"
tier = 1
[clouds.sim]
hosts = 100
host_vcpus = 64
price_per_vcpu_hour = 0.05
seed = 2
{sim}
"""
    )
    return cfg


def created_twice(logs: list[CreateRecord]) -> str:
    """What the create logs say was created more than once; empty when nothing was."""
    return "\n".join(
        f"{cid} created {len(rs)} times:\n  " + "\n  ".join(map(str, rs))
        for cid, rs in created_more_than_once(logs).items()
    )


@pytest.mark.parametrize("atomic", [False, True], ids=["nova", "atomic"])
async def test_kill_minus_nine_at_random_moments_converges(
    db_url: str, tmp_path: Path, atomic: bool
) -> None:
    rng = random.Random(20261121)
    cfg = config(tmp_path, db_url, atomic)
    settings, clock, db, ctx = await installed(cfg, "crash")
    svc = ServerService(db, settings, clock)
    worker = WorkerProcess(cfg, tmp_path / "worker.log")
    kills = 0
    try:
        # The load arrives in waves, so every kill lands while servers are being placed,
        # created, booted or deleted: 4 waves of 50 boots, then 100 deletes in 3 waves.
        ids: list[str] = []
        doomed: set[str] = set()
        worker.start()
        busy_kills = 0
        for round_ in range(6):
            if round_ < 4:
                created = await svc.create(
                    ctx,
                    CreateServer(
                        name=f"crash{round_}",
                        flavor="m1.small",
                        image="cirros",
                        min_count=50,
                        max_count=50,
                    ),
                )
                ids += [s.id for s in created]
            if round_ == 3:
                doomed = set(rng.sample(ids, 100))
                waves = [sorted(doomed)[i::3] for i in range(3)]
            if round_ >= 3:
                for sid in waves[round_ - 3]:  # some of these are still booting
                    await svc.delete(ctx, sid)
            # A worker takes about a second to start; kill it while it is doing work.
            await asyncio.sleep(rng.uniform(1.2, 2.5))
            assert worker.alive(), (tmp_path / "worker.log").read_text()[-3000:]
            busy = await in_flight(db)
            worker.kill9()
            kills += 1
            busy_kills += busy > 0
            worker.start()
        assert kills >= 5
        assert busy_kills >= 4, "kills should hit a worker with work in flight"

        deadline = time.monotonic() + 120
        while True:
            async with db.read() as s:
                statuses = Counter(
                    (r.id in doomed, r.status) for r in (await s.execute(select(Server))).scalars()
                )
            if statuses == Counter({(True, "DELETED"): 100, (False, "ACTIVE"): 100}):
                break
            assert time.monotonic() < deadline, f"no convergence: {statuses}"
            await asyncio.sleep(0.5)
        # Leaks from lost responses and killed creates are collected by sync.
        drivers = build_drivers(settings, clock)
        try:
            logs: list[CreateRecord] = []
            for d in drivers.values():
                assert isinstance(d, SimCompute)
                logs += await d.create_log()
            doubles = created_twice(logs)
            assert not doubles, f"servers created twice (see the clouds' logs):\n{doubles}"
            deadline = time.monotonic() + 60
            while True:
                remote = {}
                for name, d in drivers.items():
                    assert isinstance(d, SimCompute)
                    remote[name] = await d.all_servers()
                if sum(len(v) for v in remote.values()) == 100:
                    break
                assert time.monotonic() < deadline, {k: len(v) for k, v in remote.items()}
                await asyncio.sleep(0.5)
        finally:
            for d in drivers.values():
                await d.close()
    finally:
        worker.stop()

    async with db.read() as s:
        rows = {r.id: r for r in (await s.execute(select(Server))).scalars()}
        claims = (await s.execute(select(func.count()).select_from(Claim))).scalar_one()
        clouds = {c.name: c for c in (await s.execute(select(Cloud))).scalars()}
    seen: Counter[str] = Counter()
    for cloud, servers in remote.items():
        for r in servers:
            assert r.canopy_id in rows, f"remote {r.remote_id} on {cloud} has no canopy row"
            row = rows[r.canopy_id]
            assert row.status == "ACTIVE" and row.cloud == cloud and row.remote_id == r.remote_id
            seen[r.canopy_id] += 1
    assert all(n == 1 for n in seen.values()), "a server exists twice"
    assert set(seen) == {i for i in ids if i not in doomed}
    # Every server that lives was created once, through the API, as the one now there.
    created = {(r.canopy_id, r.remote_id) for r in logs if r.outcome is Outcome.CREATED}
    for cloud, servers in remote.items():
        assert {(r.canopy_id, r.remote_id) for r in servers} <= created, cloud
    assert claims == 100
    assert sum(c.instances_claimed for c in clouds.values()) == 100
    await db.dispose()
