"""A cloud removed from the config drains: its servers can still be deleted and synced,
new servers go elsewhere (and the placement says why), and once empty it is `removed`."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from sqlalchemy import select

from canopy.config import CloudSettings, Settings, load_settings
from canopy.controllers.runtime import Runtime
from canopy.controllers.worker import Worker
from canopy.providers.registry import build_drivers, draining_settings
from canopy.providers.sim.driver import SimCompute
from canopy.reconcile import CloudState, cloud_state, draining_clouds, seed
from canopy.store.models import Cloud, Placement, Server

from .harness import Plane, make_plane

TWO_CLOUDS = """
[[clouds]]
name = "private"
tier = 0
[clouds.sim]
hosts = 2
host_vcpus = 8
boot_seconds = 1.0
api_latency_ms = 0
[[clouds]]
name = "old"
tier = 1
[clouds.sim]
hosts = 4
host_vcpus = 16
boot_seconds = 1.0
api_latency_ms = 0
price_per_vcpu_hour = 0.01
"""


def without_old(plane: Plane, tmp_path: Path) -> Settings:
    """The same settings with cloud `old` taken out of the config file."""
    cfg = tmp_path / "without-old.toml"
    cfg.write_text(f'data_dir = "{tmp_path}"\n' + TWO_CLOUDS.split('[[clouds]]\nname = "old"')[0])
    overrides: dict[str, Any] = {
        "database": {"url": plane.settings.database.url},
        "controllers": plane.settings.controllers.model_dump(),
    }
    return load_settings(cfg, env={}, overrides=overrides)


async def restart(plane: Plane, settings: Settings) -> Plane:
    """What a restart of `canopy up` with `settings` does: reconcile, then build the drivers
    for the configured clouds and the draining ones, as cli/serve.py does."""
    for driver in plane.rt.drivers.values():
        await driver.close()
    await seed(plane.db, settings, plane.clock)
    kept = {d.name: d.settings for d in await draining_clouds(plane.db)}
    draining: list[CloudSettings] = draining_settings(settings, kept)
    drivers = build_drivers(settings, plane.clock, draining)
    rt = Runtime(
        db=plane.db,
        settings=settings.model_copy(update={"clouds": [*settings.clouds, *draining]}),
        drivers=drivers,
        clock=plane.clock,
        worker_id="restarted",
        rng=random.Random(3),
    )
    return Plane(settings, plane.db, plane.clock, rt, Worker(rt), plane.service, plane.ctx)


async def state_of(plane: Plane, name: str) -> CloudState:
    async with plane.db.read() as s:
        cloud = await s.get(Cloud, name)
        assert cloud is not None
        servers = await s.execute(
            select(Server.id).where(Server.cloud == name, Server.deleted.is_(False))
        )
        return cloud_state(cloud, len(servers.all()))


async def test_a_removed_cloud_drains_then_is_removed(db_url: str, tmp_path: Path) -> None:
    plane = await make_plane(db_url, tmp_path, toml=TWO_CLOUDS)
    try:
        on_old = await plane.create(3, name="old-vm", availability_zone="old")

        async def active() -> bool:
            return await plane.count(status="ACTIVE") == 3

        await plane.run_until(active)
        old = plane.sim("old")
        assert len(await old.list()) == 3

        plane = await restart(plane, without_old(plane, tmp_path))
        # The worker built a driver for `old` from the settings its row kept.
        assert "old" in plane.rt.drivers and isinstance(plane.rt.drivers["old"], SimCompute)
        assert [(d.name, d.servers) for d in await draining_clouds(plane.db)] == [("old", 3)]
        assert await state_of(plane, "old") is CloudState.DRAINING
        assert await state_of(plane, "private") is CloudState.ENABLED

        # New servers go elsewhere, and the placement says why `old` was not a candidate.
        (new,) = await plane.create(1, name="new-vm")

        async def placed() -> bool:
            return any(s.id == new and s.cloud for s in await plane.servers())

        await plane.run_until(placed)
        async with plane.db.read() as s:
            p = (await s.execute(select(Placement).where(Placement.server_id == new))).scalar_one()
        assert p.cloud == "private"
        steps = p.explanation["filters"]
        removed = {cloud: why for step in steps for cloud, why in step["removed"].items()}
        assert removed["old"] == "removed from the config (draining its servers)"

        # Its servers can still be deleted: the cloud call happens, the rows go.
        for sid in on_old:
            await plane.service.delete(plane.ctx, sid)

        async def gone() -> bool:
            rows = {s.id: s for s in await plane.servers()}
            return all(rows[sid].deleted for sid in on_old)

        await plane.run_until(gone)
        assert await plane.sim("old").list() == []
        assert await state_of(plane, "old") is CloudState.REMOVED
        assert await draining_clouds(plane.db) == []
        async with plane.db.read() as s:
            row = await s.get(Cloud, "old")
            assert row is not None and not row.enabled and row.removed_at is not None
    finally:
        await plane.close()


async def test_a_cloud_back_in_the_config_is_no_longer_draining(
    db_url: str, tmp_path: Path
) -> None:
    plane = await make_plane(db_url, tmp_path, toml=TWO_CLOUDS)
    try:
        (sid,) = await plane.create(1, availability_zone="old")

        async def placed() -> bool:
            return any(s.id == sid and s.cloud == "old" for s in await plane.servers())

        await plane.run_until(placed)
        await seed(plane.db, without_old(plane, tmp_path), plane.clock)
        assert await state_of(plane, "old") is CloudState.DRAINING
        await seed(plane.db, plane.settings, plane.clock)
        assert await state_of(plane, "old") is CloudState.ENABLED
        async with plane.db.read() as s:
            row = await s.get(Cloud, "old")
            assert row is not None and row.removed_at is None
    finally:
        await plane.close()
