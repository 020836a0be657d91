"""Placement under reservations on many clouds: every cloud with a claim that starts later
gets its peak from one sweep query for all of them (not one query per cloud), and each
cloud's limit is its own peak, not the sum."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from canopy.store.claims import add_claim
from canopy.store.models import Cloud

from .harness import make_plane, statements

CLOUDS = ("east", "north", "west")
THREE = "\n".join(
    f"""
[[clouds]]
name = "{name}"
tier = 0
[clouds.sim]
hosts = 1
host_vcpus = 8
host_ram_mb = 65536
boot_seconds = 1
"""
    for name in CLOUDS
)
TOML = "[scheduler]\nschedule_timeout_seconds = 60\nretry_seconds = 5\n" + THREE


async def test_one_peak_query_for_every_cloud_reserved_later(db_url: str, tmp_path: Path) -> None:
    """8 vCPUs per cloud; 6 of east's and 5 of west's reserved from an hour from now, north
    free: 2 + 8 + 3 one-vCPU servers fit, with the peaks read in one statement."""
    p = await make_plane(db_url, tmp_path, toml=TOML)
    try:
        now = p.clock.now()
        async with p.db.session() as s:
            for name, vcpus in (("east", 6), ("west", 5)):
                cloud = await s.get(Cloud, name, with_for_update=True)
                assert cloud is not None
                add_claim(
                    s,
                    cloud,
                    reservation_id=f"lease-{name}",
                    vcpus=vcpus,
                    ram_mb=1024,
                    disk_gb=0,
                    price_per_hour_micros=0,
                    now=now,
                    starts_at=now + timedelta(hours=1),
                    ends_at=now + timedelta(hours=3),
                )
        ids = await p.create(15, flavor="m1.small")  # 1 vCPU each
        with statements(p.db) as seen:
            await p.worker.placement.run_once()
        sweeps = [sql for sql in seen if " OVER (" in sql]
        assert len(sweeps) == 1, sweeps
        by_id = {s.id: s for s in await p.servers()}
        per_cloud = {c: sum(1 for i in ids if by_id[i].cloud == c) for c in CLOUDS}
        assert per_cloud == {"east": 2, "north": 8, "west": 3}
        assert sum(1 for i in ids if by_id[i].cloud is None) == 2  # waiting for room
        async with p.db.read() as s:
            used = dict((await s.execute(select(Cloud.name, Cloud.vcpus_claimed))).all())
        assert used == per_cloud  # the counters hold what is in use now, not the reservations
    finally:
        await p.close()


async def test_no_sweep_when_nothing_starts_later(db_url: str, tmp_path: Path) -> None:
    """No reservation anywhere: the counters answer and no sweep query is run."""
    p = await make_plane(db_url, tmp_path, toml=TOML)
    try:
        ids = await p.create(6, flavor="m1.small")
        with statements(p.db) as seen:
            await p.worker.placement.run_once()
        assert not any(" OVER (" in sql for sql in seen)
        assert all(s.cloud in CLOUDS for s in await p.servers() if s.id in ids)
    finally:
        await p.close()
