"""Store fixtures: a seeded database on both backends, and a PostgreSQL-only one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from canopy.bootstrap import seed
from canopy.domain.clock import FakeClock
from canopy.store.db import Database
from tests.conftest import empty_database

from .helpers import settings


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def seeded(db: Database, clock: FakeClock, tmp_path: Path) -> Database:
    """`db` with the clouds/flavors/images of helpers.CLOUDS and the default flavors."""
    await seed(db, settings(str(tmp_path)), clock)
    return db


@pytest.fixture
async def pg_seeded(pg_url: str, clock: FakeClock, tmp_path: Path) -> AsyncIterator[Database]:
    """A seeded PostgreSQL database only (for row-lock behaviour SQLite does not have)."""
    await empty_database(pg_url)
    database = Database(pg_url)
    await seed(database, settings(str(tmp_path)), clock)
    yield database
    await database.dispose()
