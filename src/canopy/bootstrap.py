"""Start-up: open the database, migrate it, reconcile the config, bootstrap the admin.

Processes that serve (and `canopy db upgrade`) call `prepare`: the data dir is made
private, then the schema is migrated, the config reconciled and the first admin made, once,
under the schema lock, so processes starting together on one database take turns. Commands
that only read call `open_existing`, which changes nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from canopy.config import Settings
from canopy.domain.clock import Clock
from canopy.private_files import (
    create_private_file,
    data_dir_files,
    make_private,
    make_private_dir,
    sqlite_path,
    with_sidecars,
)
from canopy.providers.registry import check_drivers, private_files
from canopy.reconcile import Draining, draining_clouds
from canopy.reconcile import seed as seed  # re-exported: tests and tools seed directly
from canopy.services import identity
from canopy.services.passwords import hash_password, verify_password
from canopy.store.db import Database
from canopy.store.migrate import SchemaError, require_current, schema_lock, upgrade
from canopy.store.models import Project, User


def _database(settings: Settings) -> Database:
    return Database(
        settings.database_url, echo=settings.database.echo, pool_size=settings.database.pool_size
    )


def _database_files(settings: Settings) -> list[Path]:
    path = sqlite_path(settings.database_url)
    return with_sidecars([path]) if path is not None else []


def _private_storage(settings: Settings) -> list[str]:
    """Make the data dir and the database's files private (creating the SQLite file 0600,
    so its -wal and -shm, which take its mode, are too). Returns what was tightened."""
    fixed = make_private_dir(settings.data_path)
    fixed += make_private(data_dir_files(settings.data_path))
    fixed += make_private(with_sidecars(private_files(settings, settings.clouds)))
    path = sqlite_path(settings.database_url)
    if path is not None:
        create_private_file(path)
    fixed += make_private(_database_files(settings))
    return fixed


async def open_database(settings: Settings, *, migrate: bool = True) -> Database:
    """The database, with a private data dir; migrated first (under the schema lock) unless
    `migrate` is false. Used by commands that write rows of their own (`canopy project
    create`); it never reconciles the config. Commands that only read use `open_existing`."""
    _private_storage(settings)
    db = _database(settings)
    if migrate:
        try:
            async with schema_lock(db):
                await upgrade(db)
        except BaseException:
            await db.dispose()
            raise
    return db


async def open_existing(settings: Settings) -> Database:
    """The database as it is, for commands that only read: nothing is created, migrated or
    reconciled. A database that is missing or not at this canopy's schema is refused with
    what to do (`canopy db upgrade`)."""
    path = sqlite_path(settings.database_url)
    if path is not None and not path.is_file():
        raise SchemaError(
            f"no canopy database at {path} yet: run `canopy db upgrade` (or start "
            "`canopy up`) first"
        )
    db = _database(settings)
    try:
        await require_current(db)
    except BaseException:
        await db.dispose()
        raise
    return db


@dataclass
class Prepared:
    """What `prepare` did: the open database, and what it found or changed on the way."""

    db: Database
    admin: AdminBootstrap | None
    draining: list[Draining]
    fixed: list[str]  # files and directories whose modes were tightened


async def prepare(
    settings: Settings, clock: Clock, *, admin: bool = False, admin_password: str | None = None
) -> Prepared:
    """Start-up for the processes that serve, and for `canopy db upgrade`.

    Under the schema lock, once: migrate, reconcile the config (`seed`) and, with `admin`,
    make sure the first admin exists. Then list the draining clouds (a worker builds their
    drivers from the settings their rows kept).
    """
    check_drivers(settings)  # a config naming a missing driver is refused before any write
    fixed = _private_storage(settings)
    db = _database(settings)
    try:
        boot: AdminBootstrap | None = None
        async with schema_lock(db):
            await upgrade(db)
            await seed(db, settings, clock)
            if admin:
                boot = await ensure_admin(
                    db, clock, admin_password, project_name=settings.identity.admin_project_name
                )
        draining = await draining_clouds(db)
    except BaseException:
        await db.dispose()
        raise
    return Prepared(db=db, admin=boot, draining=draining, fixed=fixed)


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
    for _ in range(3):
        try:
            return await _ensure_admin(db, clock, password, project_name)
        except (IntegrityError, _Moved):
            continue  # another process made or changed the admin meanwhile: look again
    return await _ensure_admin(db, clock, password, project_name)


class _Moved(Exception):
    """The admin user changed between reading its hash and writing."""


async def _ensure_admin(
    db: Database, clock: Clock, password: str | None, project_name: str
) -> AdminBootstrap:
    # Argon2 runs in a thread and before the write transaction, never under its lock.
    async with db.read() as s:
        stored = (
            await s.execute(select(User.password_hash).where(User.name == ADMIN_NAME))
        ).scalar_one_or_none()
    generated = False
    new_hash = None
    if stored is None:
        if not password:
            password, generated = secrets.token_urlsafe(18), True
        new_hash = await asyncio.to_thread(hash_password, password)
    elif password and not await asyncio.to_thread(verify_password, stored, password):
        new_hash = await asyncio.to_thread(hash_password, password)
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
        if (None if user is None else user.password_hash) != stored:
            raise _Moved
        created = reset = False
        if user is None:
            assert new_hash is not None and password is not None
            user = await identity.create_user(
                s, ADMIN_NAME, new_hash, now, default_project_id=project.id
            )
            created = True
        else:
            if new_hash is not None:
                await identity.update_user(s, user, password_hash=new_hash)
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
