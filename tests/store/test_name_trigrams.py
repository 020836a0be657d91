"""SQLite's trigram index of server names (store/name_trigrams.py, migration 0033) stays
exact: every write path of a name (ORM, Core bulk insert, rename, delete), VACUUM (which
renumbers the implicit rowids of `servers`), and the backfill of the rows a database
held before the migration."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, insert, text, update

from canopy.store.db import Database
from canopy.store.migrate import current_revision, head_revision, upgrade
from canopy.store.models import Server
from canopy.store.name_trigrams import KEYS, TRIGRAMS, phrase_query

from .helpers import server_row
from .test_migration_0005 import _downgrade

BASE = datetime(2026, 3, 1, tzinfo=UTC)
NEEDLES = (
    "web",
    "eb-1",
    "web-12",
    "db-",
    "-3",
    "né-9",
    'q"uo',
    "x",
    "ren",
    "zz-",
    "y w",
    "🚀-r",
    "*b?",
)


def _values(i: int, name: str) -> dict[str, Any]:
    r = server_row(BASE + timedelta(seconds=i), flavor_id="1", name=name)
    return {c.key: getattr(r, c.key) for c in Server.__mapper__.column_attrs}


async def _candidates(db: Database, needle: str) -> set[str]:
    query = phrase_query([needle])
    if query is None:
        return set()
    sql = (
        f"SELECT k.server_id FROM {TRIGRAMS} AS f JOIN {KEYS} AS k ON k.key = f.rowid "
        f"WHERE {TRIGRAMS} MATCH :q"
    )
    async with db.read() as s:
        return {r[0] for r in await s.execute(text(sql), {"q": query})}


async def _exact(db: Database) -> None:
    """The index finds exactly the servers whose names contain each needle."""
    async with db.read() as s:
        names = dict((await s.execute(text("SELECT id, name FROM servers"))).all())
        (keys,) = (await s.execute(text(f"SELECT count(*) FROM {KEYS}"))).one()
    assert keys == len(names)
    for needle in NEEDLES:
        expected = {i for i, n in names.items() if needle in n} if len(needle) >= 3 else set()
        assert await _candidates(db, needle) == expected, needle


@pytest.fixture
async def sqlite_db(seeded: Database) -> Database:
    if not seeded.is_sqlite:
        pytest.skip("SQLite's index (PostgreSQL has pg_trgm: test_name_trigram)")
    return seeded


async def test_every_write_path_keeps_the_index_exact(sqlite_db: Database) -> None:
    db = sqlite_db
    async with db.session() as s:  # Core, in bulk
        await s.execute(insert(Server), [_values(i, f"web-{i}") for i in range(200)])
    async with db.session() as s:  # the ORM
        for i in range(200, 210):
            s.add(server_row(BASE + timedelta(seconds=i), flavor_id="1", name=f"db-{i}"))
        s.add(server_row(BASE, flavor_id="1", name="né-99"))
        s.add(server_row(BASE, flavor_id="1", name='q"uote'))
        s.add(server_row(BASE, flavor_id="1", name="my web 1"))
        s.add(server_row(BASE, flavor_id="1", name="🚀-rocket"))
        s.add(server_row(BASE, flavor_id="1", name="a*b?c AND d"))
    await _exact(db)
    async with db.session() as s:  # renames, one to the same name (no change)
        await s.execute(update(Server).where(Server.name.like("web-1%")).values(name="renamed"))
        await s.execute(update(Server).where(Server.name == "db-201").values(name="db-201"))
        await s.execute(update(Server).where(Server.name == "web-5").values(status="ERROR"))
    await _exact(db)
    assert not await _candidates(db, "web-12")
    async with db.session() as s:
        await s.execute(delete(Server).where(Server.name.like("web-3%")))
    await _exact(db)
    async with db.engine.connect() as conn:
        check = f"INSERT INTO {TRIGRAMS} ({TRIGRAMS}, rank) VALUES ('integrity-check', 0)"
        await conn.execute(text(check))  # raises if the FTS structure is damaged


async def test_the_index_holds_through_vacuum_and_renumbered_rowids(sqlite_db: Database) -> None:
    db = sqlite_db
    async with db.session() as s:
        await s.execute(insert(Server), [_values(i, f"web-{i}") for i in range(300)])
    async with db.session() as s:
        await s.execute(delete(Server).where(Server.name.like("web-1%")))

    async def rowids() -> dict[str, int]:
        async with db.read() as s:
            return dict((await s.execute(text("SELECT id, rowid FROM servers"))).all())

    before = await rowids()
    async with db.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT", canopy_no_begin=True)
        await conn.exec_driver_sql("VACUUM")
    await _exact(db)
    # SQLite 3.40's VACUUM happened to keep them; it may renumber any table without an
    # INTEGER PRIMARY KEY, and so does a copy of the table (a batch migration): do it.
    async with db.session() as s:
        await s.execute(text("UPDATE servers SET rowid = rowid + 1000000"))
    after = await rowids()
    assert before.keys() == after.keys()
    assert all(before[k] != after[k] for k in before)
    await _exact(db)
    async with db.session() as s:  # and it goes on being kept after the VACUUM
        await s.execute(update(Server).where(Server.name == "web-250").values(name="zz-250"))
        await s.execute(insert(Server), [_values(1000, "web-12345")])
    await _exact(db)


async def test_the_migration_indexes_the_servers_already_there(sqlite_db: Database) -> None:
    db = sqlite_db
    async with db.session() as s:
        await s.execute(insert(Server), [_values(i, f"web-{i}") for i in range(50)])
    await _downgrade(db, "0030")
    async with db.read() as s:
        left = (
            await s.execute(text("SELECT name FROM sqlite_master WHERE name LIKE 'server_name%'"))
        ).all()
    assert not left
    async with db.session() as s:  # written while no trigger was there
        await s.execute(insert(Server), [_values(i, f"db-{i}") for i in range(50, 80)])
        await s.execute(update(Server).where(Server.name == "web-7").values(name="renamed"))
    await upgrade(db)
    assert await current_revision(db) == head_revision()
    await _exact(db)
    assert len(await _candidates(db, "db-")) == 30


def test_a_phrase_query_takes_the_texts_of_three_characters_or_more() -> None:
    assert phrase_query(["ab", "web", 'q"x']) == '"web" AND "q""x"'
    assert phrase_query(["ab", ""]) is None
