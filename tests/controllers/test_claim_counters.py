"""The cloud counters are a cache of the claims in use now, and placement respects claims
that start later (a reservation's): an open-ended server claim must fit under capacity
minus the most in use at any moment from now on."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from canopy.domain.states import DesiredState
from canopy.store.claims import add_claim, usage_at
from canopy.store.models import Claim, Cloud, Placement

from .harness import Plane, make_plane, statements

FAULTY = """
[scheduler]
burst_threshold = 0.8
blocklist_seconds = 4
schedule_timeout_seconds = 30
retry_seconds = 2
max_attempts = 2

[controllers]
backoff_base_seconds = 0.5
backoff_max_seconds = 2

[[clouds]]
name = "private"
tier = 0
[clouds.sim]
hosts = 2
host_vcpus = 8
host_ram_mb = 32768
boot_seconds = 1
capacity_error_rate = 0.15
boot_failure_rate = 0.1
seed = 5

[[clouds]]
name = "public"
tier = 1
[clouds.sim]
hosts = 20
host_vcpus = 32
host_ram_mb = 131072
boot_seconds = 1
price_per_vcpu_hour = 0.033333
capacity_error_rate = 0.1
boot_failure_rate = 0.1
seed = 9
"""

FLAVORS = ("m1.tiny", "m1.small", "m1.medium")


async def _assert_counters_are_the_claims(p: Plane) -> None:
    """Every cloud's counters equal what its claims say is in use now."""
    async with p.db.read() as s:
        clouds = list((await s.execute(select(Cloud))).scalars())
        used = await usage_at(s, [c.name for c in clouds], p.clock.now())
        claims = (await s.execute(select(func.count()).select_from(Claim))).scalar_one()
    for c in clouds:
        u = used[c.name]
        assert (c.vcpus_claimed, c.ram_mb_claimed, c.instances_claimed) == (
            u.vcpus,
            u.ram_mb,
            u.instances,
        ), c.name
        assert c.spend_per_hour_micros == u.spend_micros, c.name
    assert sum(c.instances_claimed for c in clouds) == claims


@pytest.mark.parametrize("seed", [1, 2])
async def test_counters_equal_the_claims_after_random_placements_releases_and_failures(
    db_url: str, tmp_path: Path, seed: int
) -> None:
    p = await make_plane(db_url, tmp_path, toml=FAULTY, seed_value=seed)
    rng = random.Random(seed)
    try:
        live: list[str] = []
        for _ in range(24):
            if live and rng.random() < 0.35:
                for sid in rng.sample(live, k=min(len(live), rng.randint(1, 3))):
                    await p.service.delete(p.ctx, sid)
                    live.remove(sid)
            else:
                live += await p.create(rng.randint(1, 4), flavor=rng.choice(FLAVORS))
            for _ in range(rng.randint(1, 3)):
                await p.step(advance=rng.choice([0.5, 1.0, 2.0]))
            await _assert_counters_are_the_claims(p)

        # The sequence met failures: capacity errors and failed boots released claims.
        assert any(r.attempt_log for r in await p.servers())
        for sid in live:
            await p.service.delete(p.ctx, sid)

        async def settled() -> bool:
            rows = await p.servers()
            return all(
                r.status in ("DELETED", "ERROR") and r.desired_state == DesiredState.DELETED
                for r in rows
            )

        await p.run_until(settled, steps=200)
        await _assert_counters_are_the_claims(p)
        async with p.db.read() as s:
            for c in (await s.execute(select(Cloud))).scalars():
                assert (c.vcpus_claimed, c.instances_claimed, c.spend_per_hour_micros) == (
                    0,
                    0,
                    0,
                )
    finally:
        await p.close()


PINNED = """
[scheduler]
schedule_timeout_seconds = 60
retry_seconds = 5

[[clouds]]
name = "private"
tier = 0
[clouds.sim]
hosts = 2
host_vcpus = 8
host_ram_mb = 65536
boot_seconds = 1
"""


async def _reserve(p: Plane, vcpus: int, *, starts_in: float, lasts: float) -> None:
    now = p.clock.now()
    async with p.db.session() as s:
        cloud = await s.get(Cloud, "private", with_for_update=True)
        assert cloud is not None
        add_claim(
            s,
            cloud,
            reservation_id="lease-1",
            vcpus=vcpus,
            ram_mb=vcpus * 1024,
            disk_gb=0,
            price_per_hour_micros=0,
            now=now,
            starts_at=now + timedelta(seconds=starts_in),
            ends_at=now + timedelta(seconds=starts_in + lasts),
        )


async def test_a_server_fits_under_capacity_minus_what_is_reserved_later(
    db_url: str, tmp_path: Path
) -> None:
    """16 vCPUs, 12 of them reserved from an hour from now: open-ended servers may take 4
    now, not 16, though nothing is in use yet. The counters still say 0 in use."""
    p = await make_plane(db_url, tmp_path, toml=PINNED)
    try:
        await _reserve(p, 12, starts_in=3600, lasts=7200)
        ids = await p.create(6, flavor="m1.small", availability_zone="private")  # 1 vCPU each
        with statements(p.db) as seen:
            await p.worker.placement.run_once()
        assert any(" OVER (" in sql for sql in seen), "the peak query was not asked"
        by_id = {s.id: s for s in await p.servers()}
        placed = [i for i in ids if by_id[i].cloud == "private"]
        assert len(placed) == 4
        waiting = [by_id[i] for i in ids if by_id[i].cloud is None]
        assert [w.task_state for w in waiting] == ["scheduling", "scheduling"]
        async with p.db.read() as s:
            reason = (
                await s.execute(
                    select(Placement.reason)
                    .where(Placement.server_id == waiting[0].id)
                    .order_by(Placement.id.desc())
                    .limit(1)
                )
            ).scalar_one()
            cloud = await s.get(Cloud, "private")
            assert cloud is not None
        assert "capacity" in reason and "needs 1 vcpu, 0 free of 16" in reason
        assert cloud.vcpus_claimed == 4  # in use now: the servers, not the reservation
    finally:
        await p.close()


async def test_a_reservation_that_has_ended_holds_nothing(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=PINNED)
    try:
        await _reserve(p, 12, starts_in=10, lasts=60)
        p.clock.advance(3600)
        ids = await p.create(6, flavor="m1.small", availability_zone="private")
        with statements(p.db) as seen:
            await p.worker.placement.run_once()
        # Nothing starts later: the counters answer, the peak query is not run.
        assert not any(" OVER (" in sql for sql in seen)
        by_id = {s.id: s for s in await p.servers()}
        assert all(by_id[i].cloud == "private" for i in ids)
    finally:
        await p.close()
