"""Config reconciliation: make the database's clouds, flavors and images match the settings.

Run at start by the processes that serve (under `store.migrate.schema_lock`, so processes
starting together take turns) and by `canopy db upgrade`; never by a command that only
reads. A cloud that left the config is not deleted: it *drains* (its servers can still be
deleted and synced, from the driver settings kept in its row) and is `removed` once it
holds no servers. Clouds added at run time (`source = "api"`, services/clouds.py) are not
the config's and are left alone, unless the config lists one by name: the config then
takes it over (its stored credentials are dropped: the file names where they come from).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.config import CloudSettings, Settings
from canopy.domain.clock import Clock
from canopy.providers.registry import check_drivers, stored_settings
from canopy.store.db import Database
from canopy.store.models import Cloud, Flavor, Image, ImageMapping, Server

log = logging.getLogger("canopy.reconcile")

_IMAGE_NS = uuid.UUID("9f3c0a52-3c1e-4d5e-9b7a-6a0e1f2d3c4b")


class CloudState(StrEnum):
    """What an operator is told about a cloud (`canopy cloud list`, the admin API)."""

    ENABLED = "enabled"
    DISABLED = "disabled"  # configured with enabled = false (or disabled at run time)
    DRAINING = "draining"  # removed; servers remain, they can still be deleted
    REMOVED = "removed"  # removed and holds no servers


def cloud_state(cloud: Cloud, servers: int) -> CloudState:
    """The state of `cloud`, which holds `servers` servers that are not deleted."""
    if cloud.removed_at is not None:
        return CloudState.DRAINING if servers > 0 else CloudState.REMOVED
    return CloudState.ENABLED if cloud.enabled else CloudState.DISABLED


@dataclass(frozen=True)
class Draining:
    """A cloud that left the config but still holds servers, and how to build its driver."""

    name: str
    servers: int
    settings: dict[str, object] | None  # None: removed before canopy kept settings


async def draining_clouds(db: Database) -> list[Draining]:
    """The clouds that left the config and still hold servers, by name."""
    async with db.read() as s:
        counts = (
            select(Server.cloud.label("cloud"), func.count().label("n"))
            .where(Server.deleted.is_(False), Server.cloud.is_not(None))
            .group_by(Server.cloud)
            .subquery()
        )
        rows = await s.execute(
            select(Cloud.name, Cloud.driver_settings, counts.c.n)
            .join(counts, counts.c.cloud == Cloud.name)
            .where(Cloud.removed_at.is_not(None))
            .order_by(Cloud.name)
        )
        return [Draining(name, int(n), stored) for name, stored, n in rows]


async def seed(db: Database, settings: Settings, clock: Clock) -> None:
    """Upsert clouds, flavors, images and their mappings from the settings. Idempotent."""
    check_drivers(settings)
    now = clock.now()
    async with db.session() as s:
        configured = {c.name for c in settings.clouds}
        for row in (await s.execute(select(Cloud))).scalars():
            if row.name not in configured and row.source == "config":
                row.enabled = False  # kept for history and to drain; no new placements
                if row.removed_at is None:
                    row.removed_at = now
        for cfg in settings.clouds:
            await _upsert_cloud(s, cfg)
        await _upsert_flavors(s, settings, now)
        await _upsert_images(s, settings, now)


async def _upsert_flavors(s: AsyncSession, settings: Settings, now: datetime) -> list[Flavor]:
    flavors: list[Flavor] = []
    for fcfg in settings.flavors:
        # By id first: a flavor renamed in the config keeps its id (and its servers).
        f = await s.get(Flavor, fcfg.id) if fcfg.id else None
        if f is None:
            f = (
                await s.execute(
                    select(Flavor).where(Flavor.name == fcfg.name, Flavor.deleted_at.is_(None))
                )
            ).scalar_one_or_none()
        holder = await _name_taken(s, fcfg.name, f.id) if f and f.deleted_at else None
        if f is not None and holder is not None:
            # Deleted through the API while servers used it, and its name given to a new
            # flavor since: the live flavor keeps the name, this one stays deleted.
            log.warning(
                "config flavor %s (id %s) stays deleted: live flavor %s now has its name",
                fcfg.name,
                f.id,
                holder,
            )
            continue
        if f is None:
            f = Flavor(id=fcfg.id or str(uuid.uuid4()), name=fcfg.name, created_at=now)
            s.add(f)
        f.name, f.vcpus, f.ram_mb, f.disk_gb = fcfg.name, fcfg.vcpus, fcfg.ram_mb, fcfg.disk_gb
        # The file owns its flavors: one deleted through the API comes back at the next
        # start (remove it from the file to remove it for good).
        f.is_public, f.deleted_at = True, None
        flavors.append(f)
    await s.flush()
    return flavors


async def _name_taken(s: AsyncSession, name: str, other_than: str) -> str | None:
    """The id of the live flavor named `name`, if it is not `other_than`."""
    return await s.scalar(
        select(Flavor.id).where(
            Flavor.name == name, Flavor.deleted_at.is_(None), Flavor.id != other_than
        )
    )


async def _upsert_images(s: AsyncSession, settings: Settings, now: datetime) -> None:
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
            spend_per_hour_micros=0,
            generation=0,
        )
        s.add(row)
    elif row.source != "config":
        log.warning(
            "cloud %s was added at run time and is now in the config file: the config takes "
            "it over (edit it there from now on; its stored credentials are dropped)",
            cfg.name,
        )
        row.source = "config"
        row.credentials = None
        row.generation = (row.generation or 0) + 1
    row.driver, row.tier, row.enabled = cfg.driver, cfg.tier, cfg.enabled
    row.removed_at = None  # configured (again)
    kept = stored_settings(cfg)
    if row.driver_settings is not None and row.driver_settings != kept:
        row.generation = (row.generation or 0) + 1  # running workers rebuild its driver
    row.driver_settings = kept
    # Capacity and flavor mappings come from the cloud itself: the inventory job
    # (controllers/inventory.py) reads them, for every driver alike.
