"""Start-up: open the database, migrate it, and make its clouds/flavors/images match config."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.config import CloudSettings, Settings
from canopy.domain.clock import Clock
from canopy.providers.registry import check_drivers
from canopy.providers.sim.pricing import sim_price_per_hour
from canopy.store.db import Database
from canopy.store.migrate import upgrade
from canopy.store.models import Cloud, Flavor, FlavorMapping, Image, ImageMapping, Project

_IMAGE_NS = uuid.UUID("9f3c0a52-3c1e-4d5e-9b7a-6a0e1f2d3c4b")


async def open_database(settings: Settings, *, migrate: bool = True) -> Database:
    settings.data_path.mkdir(parents=True, exist_ok=True)
    db = Database(
        settings.database_url, echo=settings.database.echo, pool_size=settings.database.pool_size
    )
    if migrate:
        await upgrade(db)
    return db


async def seed(db: Database, settings: Settings, clock: Clock) -> None:
    """Upsert clouds, flavors, images and their mappings from the settings. Idempotent."""
    check_drivers(settings)
    now = clock.now()
    async with db.session() as s:
        configured = {c.name for c in settings.clouds}
        for row in (await s.execute(select(Cloud))).scalars():
            if row.name not in configured:
                row.enabled = False  # kept for history; no new placements
        for cfg in settings.clouds:
            await _upsert_cloud(s, cfg)
        flavors: list[Flavor] = []
        for fcfg in settings.flavors:
            # By id first: a flavor renamed in the config keeps its id (and its servers).
            f = await s.get(Flavor, fcfg.id) if fcfg.id else None
            if f is None:
                f = (
                    await s.execute(select(Flavor).where(Flavor.name == fcfg.name))
                ).scalar_one_or_none()
            if f is None:
                f = Flavor(id=fcfg.id or str(uuid.uuid4()), name=fcfg.name, created_at=now)
                s.add(f)
            f.name, f.vcpus, f.ram_mb, f.disk_gb = fcfg.name, fcfg.vcpus, fcfg.ram_mb, fcfg.disk_gb
            f.is_public = True
            flavors.append(f)
        await s.flush()
        for cfg in settings.clouds:
            for f in flavors:
                await _map_flavor(s, cfg, f)
        for icfg in settings.images:
            img = await s.get(Image, icfg.id) if icfg.id else None
            if img is None:
                img = (
                    await s.execute(select(Image).where(Image.name == icfg.name))
                ).scalar_one_or_none()
            if img is None:
                img = Image(
                    id=icfg.id or str(uuid.uuid5(_IMAGE_NS, icfg.name)),
                    name=icfg.name,
                    created_at=now,
                    updated_at=now,
                )
                s.add(img)
            img.name = icfg.name
            img.any_sim = True
            await s.flush()
            for cloud, remote in icfg.map.items():
                m = await s.get(ImageMapping, (cloud, img.id))
                if m is None:
                    s.add(ImageMapping(cloud=cloud, image_id=img.id, remote_image=remote))
                else:
                    m.remote_image = remote


async def _upsert_cloud(s: AsyncSession, cfg: CloudSettings) -> None:
    row = await s.get(Cloud, cfg.name)
    if row is None:
        row = Cloud(
            name=cfg.name,
            driver=cfg.driver,
            healthy=True,
            health_message="",
            consecutive_failures=0,
            blocklist_reason="",
            vcpus_claimed=0,
            ram_mb_claimed=0,
            instances_claimed=0,
            spend_per_hour=0.0,
        )
        s.add(row)
    row.driver, row.tier, row.enabled = cfg.driver, cfg.tier, cfg.enabled
    if cfg.sim is not None:
        # Known up front for a sim; other drivers report it through capacity() on sync.
        row.vcpus_capacity = cfg.sim.hosts * cfg.sim.host_vcpus
        row.ram_mb_capacity = cfg.sim.hosts * cfg.sim.host_ram_mb
        row.instances_capacity = cfg.sim.quota_instances
        if cfg.sim.quota_vcpus is not None:
            row.vcpus_capacity = min(row.vcpus_capacity, cfg.sim.quota_vcpus)


async def _map_flavor(s: AsyncSession, cfg: CloudSettings, flavor: Flavor) -> None:
    if cfg.sim is None:
        return  # other drivers map flavors from their offerings when they come
    remote = cfg.flavor_map.get(flavor.name, flavor.name)
    price = sim_price_per_hour(cfg.sim, flavor.vcpus, flavor.ram_mb)
    m = await s.get(FlavorMapping, (cfg.name, flavor.id))
    if m is None:
        s.add(
            FlavorMapping(
                cloud=cfg.name, flavor_id=flavor.id, remote_flavor=remote, price_per_hour=price
            )
        )
    else:
        m.remote_flavor, m.price_per_hour = remote, price


async def ensure_project(
    db: Database, clock: Clock, name: str, *, quotas: dict[str, int] | None = None
) -> str:
    """The id of project `name` in domain Default, creating it (with quotas) if needed."""
    from canopy.store.models import Quota

    async with db.session() as s:
        p = (await s.execute(select(Project).where(Project.name == name))).scalar_one_or_none()
        if p is None:
            p = Project(
                id=uuid.uuid4().hex,
                name=name,
                domain_id="default",
                description="",
                enabled=True,
                created_at=clock.now(),
            )
            s.add(p)
            await s.flush()
        for res, lim in (quotas or {}).items():
            q = await s.get(Quota, (p.id, res))
            if q is None:
                s.add(Quota(project_id=p.id, resource=res, hard_limit=lim))
            else:
                q.hard_limit = lim
        return p.id


def describe(settings: Settings) -> dict[str, Any]:
    """A short, secret-free summary of what is configured (for `canopy up`'s banner)."""
    return {
        "clouds": [(c.name, c.driver, c.tier) for c in settings.clouds],
        "database": settings.database_url.split("@")[-1],
    }
