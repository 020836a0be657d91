"""The spend cap: public servers never push the hourly spend past `max_spend_per_hour`.

A server that would pass it stays in BUILD (scheduling) until capacity frees up, or goes
to ERROR with a clear fault when `schedule_timeout_seconds` passes.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from canopy.store.models import Claim, Cloud

from .harness import Plane, make_plane

CLOUDS = """
[scheduler]
burst_threshold = 1.0
max_spend_per_hour = 0.25
schedule_timeout_seconds = 60
retry_seconds = 5

[[clouds]]
name = "private"
tier = 0
[clouds.sim]
hosts = 1
host_vcpus = 2
host_ram_mb = 16384
boot_seconds = 1

[[clouds]]
name = "public"
tier = 1
[clouds.sim]
hosts = 100
host_vcpus = 64
host_ram_mb = 262144
boot_seconds = 1
price_per_vcpu_hour = 0.1
"""


async def _public_spend(p: Plane) -> int:
    """Micro-units per hour claimed on tiers >= 1."""
    async with p.db.read() as s:
        total = (
            await s.execute(
                select(func.coalesce(func.sum(Claim.price_per_hour_micros), 0))
                .join(Cloud, Cloud.name == Claim.cloud)
                .where(Cloud.tier >= 1)
            )
        ).scalar_one()
    return int(total)


async def test_cap_holds_servers_in_build_then_errors(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        ids = await p.create(6, flavor="m1.small")  # 1 vCPU, $0.10/h on public
        for _ in range(5):
            await p.step()
            assert await _public_spend(p) <= 250_000
        by_id = {s.id: s for s in await p.servers()}
        on = [by_id[i].cloud for i in ids]
        assert on.count("private") == 2
        assert on.count("public") == 2  # a 3rd would make $0.30/h > $0.25/h
        waiting = [by_id[i] for i in ids if by_id[i].cloud is None]
        assert len(waiting) == 2
        assert all(w.status == "BUILD" and w.task_state == "scheduling" for w in waiting)

        # Capacity frees up: delete one public server, and a waiting one takes its place.
        public = next(i for i in ids if by_id[i].cloud == "public")
        await p.service.delete(p.ctx, public)
        for _ in range(8):
            await p.step(advance=1.0)
            assert await _public_spend(p) <= 250_000
        by_id = {s.id: s for s in await p.servers()}
        assert sum(1 for i in ids if by_id[i].cloud is None and by_id[i].status == "BUILD") == 1

        # The last one waits out the timeout, then fails with a fault naming the cap.
        for _ in range(20):
            await p.step(advance=5.0)
        by_id = {s.id: s for s in await p.servers()}
        failed = [by_id[i] for i in ids if by_id[i].status == "ERROR"]
        assert len(failed) == 1
        fault = failed[0].fault_message or ""
        assert "No valid host was found after waiting for capacity" in fault
        assert "spend_cap" in fault and "public" in fault
        assert await _public_spend(p) <= 250_000
        assert await p.count(status="ACTIVE") == 4
    finally:
        await p.close()
