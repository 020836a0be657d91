"""bootstrap.seed: the database's clouds, flavors and images follow the config, idempotently."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from canopy.bootstrap import ensure_project, seed
from canopy.domain.clock import FakeClock
from canopy.domain.errors import Unsupported
from canopy.providers import registry
from canopy.store.claims import add_claim
from canopy.store.db import Database
from canopy.store.models import (
    Cloud,
    Flavor,
    FlavorMapping,
    Image,
    ImageMapping,
    Project,
    Quota,
)

from .helpers import CLOUDS, add_servers, server_row, settings


async def _snapshot(db: Database) -> dict[str, Any]:
    async with db.read() as s:
        return {
            "clouds": {
                c.name: (
                    c.driver,
                    c.tier,
                    c.enabled,
                    c.vcpus_capacity,
                    c.ram_mb_capacity,
                    c.instances_capacity,
                    c.vcpus_claimed,
                )
                for c in (await s.execute(select(Cloud))).scalars()
            },
            "flavors": {
                f.name: (f.id, f.vcpus, f.ram_mb, f.disk_gb)
                for f in (await s.execute(select(Flavor))).scalars()
            },
            "flavor_mappings": {
                (m.cloud, m.flavor_id): (m.remote_flavor, m.price_per_hour_micros)
                for m in (await s.execute(select(FlavorMapping))).scalars()
            },
            "images": {
                i.name: (i.id, i.status) for i in (await s.execute(select(Image))).scalars()
            },
            "image_mappings": {
                (m.cloud, m.image_id): m.remote_image
                for m in (await s.execute(select(ImageMapping))).scalars()
            },
        }


async def test_seed_writes_the_configured_world(
    db: Database, clock: FakeClock, tmp_path: Path
) -> None:
    await seed(db, settings(str(tmp_path)), clock)
    snap = await _snapshot(db)
    # Capacity and flavor mappings are the inventory's (tests/controllers/test_inventory.py):
    # the config alone says nothing about a cloud's size.
    assert snap["clouds"] == {
        "private": ("sim", 0, True, None, None, None, 0),
        "public": ("sim", 1, True, None, None, None, 0),
    }
    assert snap["flavors"] == {
        "m1.tiny": ("1", 1, 512, 1),
        "m1.small": ("2", 1, 2048, 20),
        "m1.medium": ("3", 2, 4096, 40),
        "m1.large": ("4", 4, 8192, 80),
        "m1.xlarge": ("5", 8, 16384, 160),
    }
    assert snap["flavor_mappings"] == {}
    assert snap["images"] == {
        "cirros": ("6e6d3a0e-4c4b-4f3e-9a57-0c1b5b1e2a01", "active"),
        "ubuntu-24.04": ("3b1c2f4e-8d6a-4c7e-b0a2-5f9d8e7c6b02", "active"),
    }
    assert snap["image_mappings"] == {}


async def test_seeding_twice_is_idempotent(db: Database, clock: FakeClock, tmp_path: Path) -> None:
    cfg = settings(
        str(tmp_path),
        images=[{"name": "debian", "map": {"private": "img-deb"}}],  # no id: derived from name
    )
    t0 = clock.now()
    await seed(db, cfg, clock)
    first = await _snapshot(db)
    clock.advance(60)
    await seed(db, cfg, clock)
    assert await _snapshot(db) == first
    assert first["image_mappings"] == {("private", first["images"]["debian"][0]): "img-deb"}
    async with db.read() as s:
        image = (await s.execute(select(Image))).scalar_one()
        assert image.created_at == t0  # not re-created on the second pass


async def test_seed_keeps_claim_counters(db: Database, clock: FakeClock, tmp_path: Path) -> None:
    cfg = settings(str(tmp_path))
    await seed(db, cfg, clock)
    async with db.session() as s:
        [sid] = await add_servers(s, [server_row(clock.now())])
        cloud = await s.get(Cloud, "private")
        assert cloud is not None
        add_claim(
            s,
            cloud,
            server_id=sid,
            vcpus=2,
            ram_mb=4096,
            disk_gb=0,
            price_per_hour_micros=0,
            now=clock.now(),
        )
    await seed(db, cfg, clock)
    async with db.read() as s:
        cloud = await s.get(Cloud, "private")
        assert cloud is not None
        assert (cloud.vcpus_claimed, cloud.ram_mb_claimed, cloud.instances_claimed) == (2, 4096, 1)


async def test_removed_cloud_is_disabled_not_deleted(
    db: Database, clock: FakeClock, tmp_path: Path
) -> None:
    await seed(db, settings(str(tmp_path)), clock)
    await seed(db, settings(str(tmp_path), clouds=[CLOUDS[0]]), clock)
    snap = await _snapshot(db)
    assert snap["clouds"]["private"][2] is True
    assert snap["clouds"]["public"][2] is False  # kept for history, no new placements
    # Configured again: back in service.
    await seed(db, settings(str(tmp_path)), clock)
    assert (await _snapshot(db))["clouds"]["public"][2] is True


async def test_config_changes_are_applied(db: Database, clock: FakeClock, tmp_path: Path) -> None:
    await seed(db, settings(str(tmp_path)), clock)
    changed = [
        {
            "name": "private",
            "tier": 2,
            "enabled": False,
            "flavor_map": {"m1.small": "small-remote"},
            "sim": {
                "hosts": 3,
                "host_vcpus": 8,
                "quota_vcpus": 10,
                "quota_instances": 7,
                "price_per_vcpu_hour": 0.01,
            },
        },
        CLOUDS[1],
    ]
    flavors = [{"name": "m1.small", "vcpus": 2, "ram_mb": 1024}]
    await seed(db, settings(str(tmp_path), clouds=changed, flavors=flavors), clock)
    snap = await _snapshot(db)
    driver, tier, enabled, *_ = snap["clouds"]["private"]
    assert (driver, tier, enabled) == ("sim", 2, False)
    assert snap["flavors"]["m1.small"] == ("2", 2, 1024, 0)
    async with db.read() as s:
        row = await s.get(Cloud, "private")
        assert row is not None and row.driver_settings is not None
        assert row.driver_settings["sim"]["quota_vcpus"] == 10
        assert row.driver_settings["flavor_map"] == {"m1.small": "small-remote"}


async def test_unsupported_driver_refused_before_writing(
    db: Database, clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every driver of the schema ships in this release: pretend one does not.
    monkeypatch.setitem(registry.PLANNED, "openstack", "the openstack driver is not here")
    cfg = settings(
        str(tmp_path),
        clouds=[
            *CLOUDS,
            {"name": "child", "driver": "openstack", "tier": 1, "openstack": {"cloud": "c"}},
        ],
    )
    with pytest.raises(Unsupported, match="child"):
        await seed(db, cfg, clock)
    async with db.read() as s:
        assert (await s.execute(select(func.count()).select_from(Cloud))).scalar_one() == 0
        assert (await s.execute(select(func.count()).select_from(Flavor))).scalar_one() == 0


async def test_ensure_project_is_idempotent_and_sets_quotas(db: Database, clock: FakeClock) -> None:
    pid = await ensure_project(db, clock, "team", quotas={"instances": 2, "cores": 4})
    again = await ensure_project(db, clock, "team", quotas={"instances": 3})
    assert again == pid
    other = await ensure_project(db, clock, "other")
    assert other != pid
    async with db.read() as s:
        assert (await s.execute(select(func.count()).select_from(Project))).scalar_one() == 2
        rows = await s.execute(
            select(Quota.resource, Quota.hard_limit).where(Quota.project_id == pid)
        )
        quotas = {res: lim for res, lim in rows}
    assert quotas == {"instances": 3, "cores": 4}


async def test_flavor_renamed_with_the_same_id(
    db: Database, clock: FakeClock, tmp_path: Path
) -> None:
    await seed(db, settings(str(tmp_path)), clock)
    renamed = [{"id": "1", "name": "m1.nano", "vcpus": 1, "ram_mb": 512, "disk_gb": 1}]
    await seed(db, settings(str(tmp_path), flavors=renamed), clock)
    assert (await _snapshot(db))["flavors"]["m1.nano"] == ("1", 1, 512, 1)
