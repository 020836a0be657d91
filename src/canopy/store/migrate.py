"""The schema: Alembic migrations run programmatically, one process at a time.

Many processes may start at once against one database (two `canopy api` and two
`canopy worker` on PostgreSQL). `schema_lock` makes them take turns: the first migrates and
reconciles the config while the others wait, then find nothing left to do. Commands that
only read never migrate: `require_current` tells the operator to run `canopy db upgrade`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from canopy.domain.errors import CanopyError
from canopy.store import name_trigrams
from canopy.store.db import Database

MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger("canopy.migrate")

# pg_advisory_lock's key for "migrating and reconciling": the bytes of "canopy" as an int8.
# Advisory locks are scoped to one database, so other databases on the server never wait.
SCHEMA_LOCK_KEY = int.from_bytes(b"canopy", "big")


# Indexes a migration may create that the models do not declare: optional, one backend's
# only (0013's trigram index on PostgreSQL, when pg_trgm can be created). Autogenerate
# (the schema test, `alembic revision --autogenerate`) leaves them alone.
UNMODELLED_INDEXES = frozenset({"ix_servers_name_trgm"})
# Likewise tables: SQLite's trigram index of server names (store/name_trigrams.py, 0033),
# an FTS5 table whose shadow tables are named after it, its keys and their projects.
UNMODELLED_TABLES = (name_trigrams.PROJECTS, name_trigrams.KEYS, name_trigrams.TRIGRAMS)


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Alembic's filter: everything but the unmodelled indexes and tables."""
    if type_ == "table" and name is not None and name.startswith(UNMODELLED_TABLES):
        return False
    return not (type_ == "index" and name in UNMODELLED_INDEXES)


class SchemaError(CanopyError):
    """The database's schema is not the one this canopy runs on; the message says what to do."""


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url:
        cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def head_revision() -> str:
    """The newest revision this canopy knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migrations"
    return head


def _known(revision: str) -> bool:
    script = ScriptDirectory.from_config(alembic_config())
    try:
        return script.get_revision(revision) is not None
    except Exception:  # alembic raises several types for an unknown id
        return False


async def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the schema to `revision` using the database's own engine.

    Callers that may run beside other processes hold `schema_lock` around this.
    """
    current = await current_revision(db)
    if current is not None and not _known(current):
        raise SchemaError(_newer(db, current))

    def _run(conn: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)

    async with migrating(db) as conn:
        await conn.run_sync(_run)


async def downgrade(db: Database, revision: str) -> None:
    """Take the schema down to `revision` (tests and `alembic` users; canopy never does)."""

    def _run(conn: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)

    async with migrating(db) as conn:
        await conn.run_sync(_run)


@contextlib.asynccontextmanager
async def migrating(db: Database) -> AsyncIterator[AsyncConnection]:
    """A transaction to migrate in. On SQLite, foreign keys are off while it runs, as
    SQLite's own procedure for schema changes asks (a batch migration copies a table and
    drops the old one; with foreign keys on, dropping a table other rows point at fails
    even though the copy takes its place). They can be switched only outside a
    transaction; after the commit every reference is checked (`foreign_key_check`) and
    a migration that left a dangling one is an error, with the table named."""
    async with db.engine.connect() as conn:
        if not db.is_sqlite:
            async with conn.begin():
                yield conn
            return
        await _foreign_keys(conn, on=False)
        try:
            async with conn.begin():
                yield conn
            broken = (await conn.exec_driver_sql("PRAGMA foreign_key_check")).fetchall()
            await conn.commit()
            if broken:
                raise SchemaError(
                    f"a migration left rows pointing at missing rows in {broken[0][0]} "
                    f"({len(broken)} in all): restore the database from its backup"
                )
        finally:
            await _foreign_keys(conn, on=True)


async def _foreign_keys(conn: AsyncConnection, *, on: bool) -> None:
    """PRAGMA foreign_keys, outside any transaction (the store's BEGIN is not sent)."""
    conn = await conn.execution_options(canopy_no_begin=True)
    try:
        await conn.exec_driver_sql(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
        await conn.commit()
    finally:
        await conn.execution_options(canopy_no_begin=False)


async def current_revision(db: Database) -> str | None:
    from alembic.runtime.migration import MigrationContext

    def _get(conn: Connection) -> str | None:
        return MigrationContext.configure(conn).get_current_revision()

    async with db.engine.connect() as conn:
        return await conn.run_sync(_get)


async def require_current(db: Database) -> None:
    """Refuse, with what to do, a database whose schema is not this canopy's newest."""
    current = await current_revision(db)
    head = head_revision()
    if current == head:
        return
    where = _where(db)
    if current is None:
        raise SchemaError(
            f"the database {where} has no canopy schema yet: run `canopy db upgrade` "
            "(or start `canopy up`) first"
        )
    if not _known(current):
        raise SchemaError(_newer(db, current))
    raise SchemaError(
        f"the database {where} is at schema revision {current}, this canopy needs {head}: "
        "run `canopy db upgrade`"
    )


def _newer(db: Database, current: str) -> str:
    return (
        f"the database {_where(db)} is at schema revision {current}, which this canopy "
        f"does not know (its newest is {head_revision()}): it was migrated by a newer "
        "canopy; run that version"
    )


def _where(db: Database) -> str:
    url = make_url(db.url)
    if db.is_sqlite:
        return url.database or ":memory:"
    return url.render_as_string(hide_password=True).split("@")[-1]


@contextlib.asynccontextmanager
async def schema_lock(db: Database) -> AsyncIterator[None]:
    """Hold the database-wide lock for migrating and reconciling while the block runs.

    PostgreSQL: a session-level advisory lock on a connection of its own (in autocommit,
    so no transaction stays open while others wait). SQLite: an exclusive `flock` on a
    file next to the database, where the platform has one; SQLite itself serves one
    process at a time anyway.
    """
    if db.is_postgres:
        async with _pg_lock(db):
            yield
    elif db.is_sqlite:
        async with _file_lock(db):
            yield
    else:  # pragma: no cover - only the two backends are supported
        yield


@contextlib.asynccontextmanager
async def _pg_lock(db: Database) -> AsyncIterator[None]:
    async with db.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        got = (
            await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": SCHEMA_LOCK_KEY})
        ).scalar_one()
        if not got:
            log.info("another canopy process is migrating the database; waiting for it")
            await conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": SCHEMA_LOCK_KEY})
        try:
            yield
        finally:
            try:
                await asyncio.shield(
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": SCHEMA_LOCK_KEY})
                )
            except Exception:
                # A connection whose unlock failed must not go back to the pool holding it.
                await conn.invalidate()
                raise


@contextlib.asynccontextmanager
async def _file_lock(db: Database) -> AsyncIterator[None]:
    path = make_url(db.url).database
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no flock; one process there anyway
        fcntl = None  # type: ignore[assignment]
    if not path or path == ":memory:" or fcntl is None:
        yield
        return
    lock = Path(path).with_name(Path(path).name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        waited = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waited:
                    log.info("another canopy process is migrating %s; waiting for it", path)
                    waited = True
                await asyncio.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
