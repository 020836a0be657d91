"""Shared fixtures: a migrated database on SQLite and on the local PostgreSQL.

Every store and controller test runs on both. Under CI (CI=true) PostgreSQL is required;
elsewhere, if it is not reachable, its tests are skipped with one line saying so.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text

from canopy.store.db import Database
from canopy.store.migrate import upgrade
from canopy.store.models import Base

# The CLI's Rich consoles fix their width from COLUMNS when they are made (at import). A
# pytest-xdist worker inherits COLUMNS=80 from its launcher, a plain run has none: drop it
# here, before any test imports the CLI, so CLI output wraps the same either way (the CLI
# tests set the width they want).
os.environ.pop("COLUMNS", None)

PG_ADMIN_URL = os.environ.get(
    "CANOPY_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


async def _pg_reachable() -> str | None:
    db = Database(PG_ADMIN_URL)
    try:
        async with db.engine.connect() as conn:
            await conn.execute(text("select 1"))
        return None
    except Exception as e:
        return f"{type(e).__name__}: {e}"
    finally:
        await db.dispose()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, migrated once."""
    problem = asyncio.run(_pg_reachable())
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required under CI but not reachable: {problem}")
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}; its tests are skipped")
    name = f"canopy_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    base = PG_ADMIN_URL.rsplit("/", 1)[0]

    async def _create() -> None:
        admin = Database(PG_ADMIN_URL)
        async with admin.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        await admin.dispose()
        db = Database(f"{base}/{name}")
        await upgrade(db)
        await db.dispose()

    async def _drop() -> None:
        admin = Database(PG_ADMIN_URL)
        async with admin.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()

    asyncio.run(_create())
    yield f"{base}/{name}"
    asyncio.run(_drop())


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (faster than migrating each time)."""
    path = tmp_path_factory.mktemp("sqlite") / "template.db"

    async def _make() -> None:
        db = Database(f"sqlite+aiosqlite:///{path}")
        await upgrade(db)
        await db.dispose()  # closing the last connection checkpoints the WAL into the file

    asyncio.run(_make())
    return path


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        target = tmp_path / "canopy.db"
        shutil.copy(template, target)
        return f"sqlite+aiosqlite:///{target}"
    url: str = request.getfixturevalue("pg_url")

    asyncio.run(empty_database(url))
    return url


_EMPTY_ALL = "; ".join(
    f'DELETE FROM "{table.name}"' for table in reversed(Base.metadata.sorted_tables)
)


async def empty_database(url: str) -> None:
    """Delete every row, children first (faster than TRUNCATE ... CASCADE per test), in one
    transaction: the statements go as one simple query, which asyncpg sends when it has no
    arguments, between its BEGIN and COMMIT (a round trip per table cost about 100 ms a
    test; this, connection included, about 25 ms)."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        async with conn.transaction():
            await conn.execute(_EMPTY_ALL)
    finally:
        await conn.close()


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    yield database
    await database.dispose()
