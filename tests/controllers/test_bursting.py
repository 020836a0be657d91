"""Bursting: private fills up to the burst threshold, then new servers go to public.

The rule (docs/scheduling.md): take the lowest tier whose utilisation *after* this
placement stays at or below `burst_threshold`. `private` fits 8 small servers, so with a
threshold of 0.8 the 6th server leaves it at 6/8 = 75% and the 7th would take it to
7/8 = 87.5%: servers 1-6 go to private and the rest burst to public.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from canopy.store.models import Placement, Server

from .harness import make_plane

CLOUDS = """
[scheduler]
burst_threshold = 0.8

[[clouds]]
name = "private"
tier = 0
[clouds.sim]
hosts = 1
host_vcpus = 8
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
price_per_vcpu_hour = 0.048
"""


async def test_private_fills_to_threshold_then_bursts(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        placed: list[str] = []
        for i in range(10):  # one at a time, so the order is the boot order
            [sid] = await p.create(1, name=f"vm{i}", flavor="m1.small")
            await p.worker.placement.run_once()
            placed.append((await p.service.get(p.ctx, sid)).cloud or "")
        assert placed == ["private"] * 6 + ["public"] * 4

        async with p.db.read() as s:
            rows = (
                await s.execute(
                    select(Server.name, Placement.reason)
                    .join(Placement, Placement.server_id == Server.id)
                    .order_by(Placement.id)
                )
            ).all()
        reasons = dict(rows)
        assert "stays at 75% <= burst threshold 80%" in reasons["vm5"]
        assert "would reach 88% > burst threshold 80%" in reasons["vm6"]
        assert "burst to tier 1" in reasons["vm6"]

        async def all_active() -> bool:
            return await p.count(status="ACTIVE") == 10

        await p.run_until(all_active)
    finally:
        await p.close()


async def test_spike_lands_the_same_way_when_placed_in_one_batch(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        await p.create(10, flavor="m1.small")
        await p.worker.placement.run_once()
        clouds = [s.cloud for s in await p.servers()]
        assert clouds.count("private") == 6
        assert clouds.count("public") == 4
    finally:
        await p.close()


async def test_when_public_is_full_private_takes_the_rest(db_url: str, tmp_path: Path) -> None:
    toml = CLOUDS.replace("hosts = 100", "hosts = 1").replace("host_vcpus = 64", "host_vcpus = 1")
    p = await make_plane(db_url, tmp_path, toml=toml)
    try:
        await p.create(10, flavor="m1.small")
        await p.worker.placement.run_once()
        clouds = [s.cloud for s in await p.servers()]
        # 6 under the threshold, 1 on public (now full), then private up to its 8.
        assert clouds.count("private") == 8
        assert clouds.count("public") == 1
        waiting = [s for s in await p.servers() if s.cloud is None]
        assert len(waiting) == 1 and waiting[0].status == "BUILD"
        assert waiting[0].task_state == "scheduling"
    finally:
        await p.close()
