"""SQLite's trigram index of server names (store/name_trigrams.py, migrations 0033 and
0034) stays exact, for every project and within each project's range of keys: every write
path of a name (ORM, Core bulk insert, rename, a change of id or project, delete), VACUUM
(which renumbers the implicit rowids of `servers`), and the backfill of the rows a
database held before the migration."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, insert, text, update

from canopy.store.db import Database
from canopy.store.migrate import current_revision, head_revision, upgrade
from canopy.store.models import Server
from canopy.store.name_trigrams import KEYS, TRIGRAMS, in_project, phrase_query

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


def _values(i: int, name: str, project: str = "p1") -> dict[str, Any]:
    r = server_row(BASE + timedelta(seconds=i), flavor_id="1", name=name, project_id=project)
    return {c.key: getattr(r, c.key) for c in Server.__mapper__.column_attrs}


async def _candidates(db: Database, needle: str, project: str | None = None) -> set[str]:
    """The servers the index finds with `needle` (of `project` only: its range of keys)."""
    query = phrase_query([needle])
    if query is None:
        return set()
    sql = (
        f"SELECT k.server_id FROM {TRIGRAMS} AS f JOIN {KEYS} AS k ON k.key = f.rowid "
        f"WHERE {TRIGRAMS} MATCH :q"
    )
    if project is not None:
        sql += " AND " + in_project("f.rowid", "p")
    async with db.read() as s:
        return {r[0] for r in await s.execute(text(sql), {"q": query, "p": project})}


async def _exact(db: Database) -> None:
    """The index finds exactly the servers whose names contain each needle, and within a
    project's range exactly that project's."""
    async with db.read() as s:
        rows = (await s.execute(text("SELECT id, name, project_id FROM servers"))).all()
        (keys,) = (await s.execute(text(f"SELECT count(*) FROM {KEYS}"))).one()
    assert keys == len(rows)
    for needle in NEEDLES:
        for project in (None, *sorted({r[2] for r in rows}), "nobody"):
            expected = {
                i for i, n, p in rows if needle in n and project in (None, p) and len(needle) >= 3
            }
            assert await _candidates(db, needle, project) == expected, (needle, project)


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
    async with db.session() as s:  # other projects, and servers moving between them
        await s.execute(insert(Server), [_values(i, f"web-{i}", "p2") for i in range(300, 340)])
        await s.execute(insert(Server), [_values(i, f"web-{i}", "p3") for i in range(340, 350)])
        await s.execute(update(Server).where(Server.name == "web-301").values(project_id="p1"))
        moved = update(Server).where(Server.name == "web-302")
        await s.execute(moved.values(project_id="p3", name="web-moved"))
        await s.execute(update(Server).where(Server.name == "web-303").values(id="renumbered"))
        both = update(Server).where(Server.name == "web-304")
        await s.execute(both.values(id="renumbered-2", project_id="p1", name="db-304"))
    await _exact(db)
    assert await _candidates(db, "web-moved", "p3") == {(await _id(db, "web-moved"))}
    async with db.session() as s:
        await s.execute(delete(Server).where(Server.name.like("web-3%")))
    await _exact(db)
    async with db.engine.connect() as conn:
        check = f"INSERT INTO {TRIGRAMS} ({TRIGRAMS}, rank) VALUES ('integrity-check', 0)"
        await conn.execute(text(check))  # raises if the FTS structure is damaged


async def _id(db: Database, name: str) -> str:
    async with db.read() as s:
        return str(
            (
                await s.execute(text("SELECT id FROM servers WHERE name = :n"), {"n": name})
            ).scalar_one()
        )


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


async def test_0034_keys_the_index_by_project_and_its_downgrade_does_not(
    sqlite_db: Database,
) -> None:
    db = sqlite_db
    async with db.session() as s:
        for n, project in enumerate(("p1", "p2", "p1")):  # interleaved
            rows = [_values(i, f"web-{project}-{i}", project) for i in range(20 * n, 20 * n + 20)]
            await s.execute(insert(Server), rows)
    await _downgrade(db, "0033")  # 0033's layout: one key per server, in creation order
    async with db.read() as s:
        keys = (await s.execute(text(f"SELECT key FROM {KEYS} ORDER BY key"))).scalars().all()
    assert keys == list(range(1, 61))
    async with db.session() as s:  # kept by 0033's triggers
        await s.execute(insert(Server), [_values(99, "db-99", "p2")])
        await s.execute(update(Server).where(Server.name == "web-p1-3").values(name="db-3"))
    async with db.read() as s:
        found = f"SELECT count(*) FROM {TRIGRAMS} WHERE {TRIGRAMS} MATCH '\"db-\"'"
        assert (await s.execute(text(found))).scalar_one() == 2
    await upgrade(db)
    await _exact(db)
    async with db.read() as s:
        spans = (
            await s.execute(
                text(
                    f"SELECT s.project_id, min(k.key >> 32), max(k.key >> 32) FROM {KEYS} AS k "
                    "JOIN servers AS s ON s.id = k.server_id GROUP BY s.project_id"
                )
            )
        ).all()
    assert len(spans) == 2 and all(lo == hi for _, lo, hi in spans)  # a range each
    assert spans[0][1] != spans[1][1]


def test_a_phrase_query_takes_the_texts_of_three_characters_or_more() -> None:
    assert phrase_query(["ab", "web", 'q"x']) == '"web" AND "q""x"'
    assert phrase_query(["ab", ""]) is None
