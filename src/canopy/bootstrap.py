"""Start-up: open the database, migrate it, and make its clouds/flavors/images match config."""

from __future__ import annotations

import json
import os
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.config import CloudSettings, Settings
from canopy.domain.clock import Clock
from canopy.providers.registry import check_drivers
from canopy.providers.sim.pricing import sim_price_per_hour
from canopy.services import identity
from canopy.services.passwords import hash_password, verify_password
from canopy.store.db import Database
from canopy.store.migrate import upgrade
from canopy.store.models import (
    Cloud,
    Flavor,
    FlavorMapping,
    Image,
    ImageMapping,
    Project,
    User,
)

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


# The first admin (like `keystone-manage bootstrap`) ---------------------------------------

ADMIN_NAME = "admin"  # both the user and the project
ADMIN_PASSWORD_ENV = "CANOPY_ADMIN_PASSWORD"


@dataclass(frozen=True)
class AdminBootstrap:
    """What `ensure_admin` did. `password` is set only when it is known in this process:
    generated now, or given; a stored password is never recoverable."""

    user_id: str
    project_id: str
    created: bool
    generated: bool
    reset: bool
    password: str | None


async def ensure_admin(
    db: Database, clock: Clock, password: str | None, *, project_name: str = ADMIN_NAME
) -> AdminBootstrap:
    """Make sure project `admin` and user `admin` with the admin role on it exist.

    A new user gets `password`, or a generated one. For an existing user, `password` is
    authoritative, as with keystone-manage bootstrap: if it no longer matches, the stored
    one is replaced (which revokes the user's tokens); without it nothing changes. Two API
    processes starting at once on PostgreSQL race safely: the loser re-reads.
    """
    try:
        return await _ensure_admin(db, clock, password, project_name)
    except IntegrityError:
        return await _ensure_admin(db, clock, password, project_name)


async def _ensure_admin(
    db: Database, clock: Clock, password: str | None, project_name: str
) -> AdminBootstrap:
    now = clock.now()
    async with db.session() as s:
        project = (
            await s.execute(select(Project).where(Project.name == project_name))
        ).scalar_one_or_none()
        if project is None:
            project = await identity.create_project(
                s, project_name, now, description="Canopy's administrators"
            )
        user = (await s.execute(select(User).where(User.name == ADMIN_NAME))).scalar_one_or_none()
        created = generated = reset = False
        if user is None:
            if not password:
                password, generated = secrets.token_urlsafe(18), True
            user = await identity.create_user(
                s, ADMIN_NAME, hash_password(password), now, default_project_id=project.id
            )
            created = True
        else:
            if password and not verify_password(user.password_hash, password):
                await identity.update_user(s, user, password_hash=hash_password(password))
                reset = True
            if not user.enabled:
                user.enabled = True
        await identity.grant(s, user.id, project.id, "admin")
        return AdminBootstrap(user.id, project.id, created, generated, reset, password or None)


CLOUD_NAME = "canopy"


def clouds_yaml_path(settings: Settings) -> Path:
    return settings.data_path / "clouds.yaml"


def write_clouds_yaml(settings: Settings, password: str) -> Path:
    """`{data_dir}/clouds.yaml` with a `canopy` entry for the admin, readable only by its
    owner (0600, written to a temporary file and renamed, so it is never half-written)."""
    path = clouds_yaml_path(settings)
    q = json.dumps  # a JSON string is a valid YAML double-quoted scalar
    text = (
        "# Written by `canopy up` for the admin user. Keep it private: it holds a password.\n"
        "# Use: export OS_CLIENT_CONFIG_FILE=<this file> OS_CLOUD=canopy\n"
        "clouds:\n"
        f"  {CLOUD_NAME}:\n"
        "    auth:\n"
        f"      auth_url: {q(settings.public_url + '/identity')}\n"
        f"      username: {q(ADMIN_NAME)}\n"
        f"      password: {q(password)}\n"
        f"      project_name: {q(settings.identity.admin_project_name)}\n"
        '      user_domain_name: "Default"\n'
        '      project_domain_name: "Default"\n'
        f"    region_name: {q(settings.identity.region)}\n"
        '    interface: "public"\n'
        "    identity_api_version: 3\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o600)  # whatever the umask said
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
