"""Inventory: each cloud's capacity and flavor mappings come from its driver, for every
driver alike; a cloud whose inventory was never read is not placeable, and says so."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from canopy.controllers.inventory import fits, map_flavors
from canopy.domain.specs import Offering
from canopy.store.models import Cloud, Flavor, FlavorMapping, Job, Placement

from .harness import Plane, make_plane

CLOUDS = """
[[clouds]]
name = "private"
tier = 0
flavor_map = { "m1.small" = "small-remote" }
[clouds.sim]
hosts = 3
host_vcpus = 8
host_ram_mb = 16384
quota_vcpus = 10
quota_instances = 7
price_per_vcpu_hour = 0.01
api_latency_ms = 0

[[clouds]]
name = "public"
tier = 1
[clouds.sim]
hosts = 10
host_vcpus = 64
host_ram_mb = 65536
price_per_vcpu_hour = 0.05
api_latency_ms = 0
"""


async def _mappings(db: object) -> dict[tuple[str, str], tuple[str, int]]:
    from canopy.store.db import Database

    assert isinstance(db, Database)
    async with db.read() as s:
        rows = await s.execute(
            select(FlavorMapping.cloud, Flavor.name, FlavorMapping.remote_flavor,
                   FlavorMapping.price_per_hour_micros)
            .join(Flavor, Flavor.id == FlavorMapping.flavor_id)
        )  # fmt: skip
        return {(c, f): (r, p) for c, f, r, p in rows}


async def test_sim_clouds_get_their_capacity_and_every_flavor(db_url: str, tmp_path: Path) -> None:
    plane = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        async with plane.db.read() as s:
            clouds = {c.name: c for c in (await s.execute(select(Cloud))).scalars()}
            jobs = {j.name: j for j in (await s.execute(select(Job))).scalars()}
        private, public = clouds["private"], clouds["public"]
        assert (private.vcpus_capacity, private.ram_mb_capacity) == (10, 3 * 16384)
        assert private.instances_capacity == 7
        assert (public.vcpus_capacity, public.instances_capacity) == (640, None)
        assert private.any_image and public.any_image  # the sim boots any image id
        assert private.capacity_updated_at is not None
        assert jobs["inventory:private"].runs == 1 and jobs["inventory:private"].claimed_by is None
        m = await _mappings(plane.db)
        assert len(m) == 2 * 5  # every flavor on both clouds
        assert m[("private", "m1.small")] == ("small-remote", 10_000)  # explicit map
        assert m[("private", "m1.medium")] == ("m1.medium", 20_000)  # 2 vcpus x 0.01
        assert m[("public", "m1.medium")] == ("m1.medium", 100_000)  # 2 vcpus x 0.05
    finally:
        await plane.close()


async def test_a_cloud_without_inventory_is_not_placeable_and_says_so(
    db_url: str, tmp_path: Path
) -> None:
    plane = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        async with plane.db.session() as s:
            for c in (await s.execute(select(Cloud))).scalars():
                c.capacity_updated_at = None  # as if never read
        [sid] = await plane.create()
        await plane.worker.placement.run_once()
        async with plane.db.read() as s:
            waits = (
                await s.execute(
                    select(Placement.reason, Placement.worker, Placement.cloud).where(
                        Placement.server_id == sid
                    )
                )
            ).all()
        assert waits and "no inventory yet" in waits[-1].reason
        # The decision to wait is a decision: it names the worker that took it.
        assert (waits[-1].worker, waits[-1].cloud) == (plane.worker.rt.worker_id, None)
        # The next inventory pass (due at once here) makes both clouds placeable again.
        await plane.worker.inventory.run_once(force=True)
        plane.clock.advance(plane.settings.scheduler.retry_seconds)
        await plane.worker.placement.run_once()
        (server,) = await plane.servers()
        assert server.cloud == "private"
    finally:
        await plane.close()


def _offer(name: str, vcpus: int, ram_mb: int, price: float, disk_gb: int = 0) -> Offering:
    return Offering(name, vcpus, ram_mb, disk_gb, price)


def test_each_flavor_gets_the_cheapest_offering_that_fits_or_its_explicit_map() -> None:
    flavors = [
        Flavor(id="1", name="tiny", vcpus=1, ram_mb=512, disk_gb=1),
        Flavor(id="2", name="big", vcpus=8, ram_mb=32768, disk_gb=80),
        Flavor(id="3", name="huge", vcpus=128, ram_mb=10**7, disk_gb=0),
        Flavor(id="4", name="pinned", vcpus=1, ram_mb=512, disk_gb=0),
    ]
    offers = [
        _offer("t3.nano", 2, 512, 0.0052),
        _offer("t3.micro", 2, 1024, 0.0104),
        _offer("m5.2xlarge", 8, 32768, 0.384),
        _offer("c5d.2xlarge", 8, 16384, 0.384, disk_gb=200),  # too little RAM
        _offer("r5.2xlarge", 8, 65536, 0.504),
        _offer("i3.2xlarge", 8, 62464, 0.2, disk_gb=40),  # cheap, but its local disk is short
    ]
    mapped = map_flavors(flavors, offers, {"pinned": "t3.micro"}, None)
    assert {k: (v.remote_flavor, v.price_per_hour) for k, v in mapped.items()} == {
        "1": ("t3.nano", 0.0052),
        "2": ("m5.2xlarge", 0.384),
        "4": ("t3.micro", 0.0104),
    }  # nothing fits "huge": not offered there
    assert fits(_offer("x", 2, 2048, 1.0), 2, 2048, 500)  # no local disk: EBS sized at boot
    assert not fits(_offer("x", 2, 2048, 1.0, disk_gb=100), 2, 2048, 500)


async def test_a_flavor_made_during_a_pass_gets_another_pass(db_url: str, tmp_path: Path) -> None:
    """A flavor created while a pass runs leaves the job due (the pass may have read the
    flavors before it), and placement waits on a cloud whose last pass began before the
    flavor was made and that has not mapped it, rather than call it not offered."""
    from canopy.domain.placement import PlacementRequest
    from canopy.domain.specs import Resources
    from canopy.scheduler.context import Context
    from canopy.scheduler.filters import inventory
    from canopy.services import flavors
    from canopy.store.snapshots import cloud_snapshot, counted

    plane = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sim = plane.sim("public")
        real = sim.capacity
        made: list[Flavor] = []

        async def capacity_then_a_new_flavor():  # type: ignore[no-untyped-def]
            got = await real()
            if not made:  # an admin creates a flavor while this pass runs
                plane.clock.advance(1)
                async with plane.db.session() as s:
                    new = flavors.NewFlavor(id="c9", name="c9.new", ram_mb=512, vcpus=1, disk_gb=0)
                    made.append(await flavors.create(s, plane.clock, new))
            return got

        sim.capacity = capacity_then_a_new_flavor  # type: ignore[method-assign]
        plane.clock.advance(1)
        assert await plane.worker.inventory.inventory_cloud("public", force=True)
        async with plane.db.read() as s:
            job = await s.get(Job, "inventory:public")
            cloud = await s.get(Cloud, "public")
        assert job is not None and job.next_run_at is None  # due again at once
        assert cloud is not None and cloud.capacity_updated_at is not None
        assert cloud.capacity_updated_at < made[0].created_at  # the pass began before
        req = PlacementRequest(
            server_id="s",
            flavor="c9.new",
            resources=Resources(1, 512, 0, 1),
            flavor_created_at=made[0].created_at,
        )

        def verdict(c: Cloud, prices: dict[str, int]) -> str | None:
            snap = cloud_snapshot(
                c, plane.clock.now(), counted(c), price_per_hour_micros=prices, images=None
            )
            return inventory(snap, Context.build([snap], req, plane.settings.scheduler))

        # Not mapped there (a pass that read the flavors too early): wait; mapped: go.
        assert verdict(cloud, {}) == "flavor 'c9.new' is new: the cloud's next inventory maps it"
        assert verdict(cloud, {"c9.new": 1}) is None
        # The next (unforced) pass runs, the job being due, maps it and is recorded later
        # than the flavor: from then on an unmapped flavor is the flavor filter's to judge.
        plane.clock.advance(1)
        assert await plane.worker.inventory.inventory_cloud("public")
        async with plane.db.read() as s:
            assert await s.get(FlavorMapping, ("public", "c9")) is not None
            job = await s.get(Job, "inventory:public")
            cloud = await s.get(Cloud, "public")
        assert job is not None and job.next_run_at is not None
        assert job.next_run_at > plane.clock.now()
        assert cloud is not None and verdict(cloud, {}) is None
    finally:
        await plane.close()


async def test_two_passes_over_one_cloud_at_once_make_one_read(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wake of every loop (a cloud changed) starts the clouds loop's forced read and the
    inventory loop's own pass together: the second finds the first in flight and leaves
    it the cloud, never failing on the hold the first has, and never writes the job: a
    second lease would make the job's next run "now" again, over a flavor's "run again"
    written since the first lease."""
    import asyncio

    from canopy.controllers import inventory

    leases: list[str] = []
    real = inventory.lease_job

    async def counted(s: object, **kw: Any) -> Job | None:
        leases.append(kw["name"])
        return await real(s, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(inventory, "lease_job", counted)
    p = await make_plane(db_url, tmp_path)
    try:
        inv = p.worker.inventory
        leases.clear()  # the plane's own first read
        both = await asyncio.gather(
            inv.inventory_cloud("private", force=True), inv.inventory_cloud("private", force=True)
        )
        assert sorted(both) == [False, True]
        assert leases == ["inventory:private"]
    finally:
        await p.close()


async def test_a_forced_read_beside_a_pass_that_finds_the_job_not_due_still_reads(
    db_url: str, tmp_path: Path
) -> None:
    """The inventory loop's pass (not forced) and the clouds loop's forced read of a changed
    cloud start together; the job is not due. The loop's pass must not keep the forced
    read out while it only looks: the forced one reads the cloud."""
    import asyncio

    p = await make_plane(db_url, tmp_path)
    try:
        inv = p.worker.inventory
        async with p.db.read() as s:
            job = await s.get(Job, "inventory:private")
            assert job is not None and job.next_run_at is not None
            assert job.next_run_at > p.clock.now()  # not due
            runs = job.runs
        both = await asyncio.gather(
            inv.inventory_cloud("private"), inv.inventory_cloud("private", force=True)
        )
        assert both == [False, True]
        async with p.db.read() as s:
            job = await s.get(Job, "inventory:private")
        assert job is not None and job.runs == runs + 1
    finally:
        await p.close()


async def _hold_job(p: Plane, worker: str, seconds: float) -> None:
    """`worker` holds the private cloud's inventory job for `seconds` from now, as its pass
    in progress would (its lease also made the job's next run now)."""
    from datetime import timedelta

    async with p.db.session() as s:
        job = await s.get(Job, "inventory:private")
        assert job is not None
        job.claimed_by = worker
        job.claim_expires_at = p.clock.now() + timedelta(seconds=seconds)
        job.next_run_at = p.clock.now()


async def test_a_cloud_a_dead_worker_was_reading_is_read_when_its_lease_runs_out(
    db_url: str, tmp_path: Path
) -> None:
    """A worker killed during a cloud's first inventory holds the job until its lease runs
    out, and the cloud, never read, is not placeable. The next worker looks again at that
    lease's end, not a whole idle period (a minute) later."""
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        lease = p.settings.controllers.lease_seconds
        assert lease < p.worker.inventory.idle  # else the two waits could not be told apart
        async with p.db.session() as s:
            cloud = await s.get(Cloud, "private")
            assert cloud is not None
            cloud.capacity_updated_at = None  # as if never read
        await _hold_job(p, "dead-worker", lease)
        assert p.worker._inventory_wait(p.worker.inventory.idle) == p.worker.inventory.idle

        assert await p.worker.inventory.run_once(force=True) == 1  # public only
        wait = p.worker._inventory_wait(p.worker.inventory.idle)
        assert lease <= wait <= lease + 0.01, wait

        p.clock.advance(wait)  # the dead worker's lease has run out
        assert await p.worker.inventory.run_once() == 1
        async with p.db.read() as s:
            cloud = await s.get(Cloud, "private")
            assert cloud is not None and cloud.capacity_updated_at is not None
        # Nothing is left to look at: the jobs' next runs are the idle loop's.
        assert p.worker._inventory_wait(p.worker.inventory.idle) == p.worker.inventory.idle
        await p.create()
        await p.worker.placement.run_once()
        (server,) = await p.servers()
        assert server.cloud == "private"
    finally:
        await p.close()


async def test_a_cloud_removed_while_left_to_another_worker_is_not_waited_for(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        await _hold_job(p, "other", 3600)
        await p.worker.inventory.run_once(force=True)
        assert p.worker.inventory.next_due_in(p.clock.now()) is not None
        p.rt.drivers.pop("private")
        p.clock.advance(p.settings.controllers.lease_seconds)
        await p.worker.inventory.run_once()
        assert p.worker.inventory.next_due_in(p.clock.now()) is None
    finally:
        await p.close()
