"""`?name=` patterns on PostgreSQL: the trigram index (migration 0010) answers them.

Nova's name filter is a regular expression searched anywhere in the name, which no
B-tree can answer. With pg_trgm, PostgreSQL takes the trigrams every match must contain
from the pattern and reads the rows that have them from a GIN index; the pattern is still
checked on each, so the answer is the one the pattern gives.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.engine import Connection

from canopy.store.db import Database
from canopy.store.models import Server
from canopy.store.regexp import search
from tests.store.helpers import server_row

ROWS = 20000


async def _indexes(db: Database) -> set[str]:
    def names(conn: Connection) -> set[str]:
        rows = conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'index'"))
        return {r[0] for r in rows}

    async with db.engine.connect() as conn:
        if db.is_sqlite:
            return await conn.run_sync(names)
        rows = await conn.execute(text("SELECT indexname FROM pg_indexes"))
        return {r[0] for r in rows}


async def test_the_trigram_index_exists_on_postgresql_only(db: Database) -> None:
    assert ("ix_servers_name_trgm" in await _indexes(db)) == db.is_postgres


async def test_an_unanchored_name_is_read_from_the_trigram_index(seeded: Database) -> None:
    db = seeded
    if not db.is_postgres:
        pytest.skip("PostgreSQL's index; SQLite tests a literal first (test_server_queries)")
    from datetime import UTC, datetime, timedelta

    base = datetime(2026, 3, 1, tzinfo=UTC)
    rows = [
        server_row(
            base + timedelta(seconds=i),
            project_id="p1",
            flavor_id="1",
            sid=f"00000000-0000-4000-8000-{i:012d}",
            name=f"{'db' if i % 100 == 0 else 'web'}-{i}",
        )
        for i in range(ROWS)
    ]
    values = [{c.key: getattr(r, c.key) for c in Server.__mapper__.column_attrs} for r in rows]
    async with db.session() as s:
        await s.execute(insert(Server), values)
    async with db.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        # VACUUM also moves the rows just written from GIN's pending list into the index
        # proper (autovacuum does so in service), so the planner sees the index's real cost.
        await conn.execute(text("VACUUM ANALYZE servers"))
    q = (
        select(Server.id)
        .where(
            Server.project_id == "p1",
            Server.deleted.is_(False),
            Server.name.regexp_match("db-1[0-9]00"),
        )
        .order_by(Server.created_at.desc(), Server.id.desc())
        .limit(1000)
    )
    async with db.read() as s:
        sql = str(q.compile(dialect=s.get_bind().dialect, compile_kwargs={"literal_binds": True}))
        plan: list[Any] = [r[0] for r in await s.execute(text("EXPLAIN " + sql))]
        found = (await s.execute(q)).scalars().all()
    assert any("ix_servers_name_trgm" in line for line in plan), "\n".join(plan)
    assert sorted(found) == sorted(r.id for r in rows if search("db-1[0-9]00", r.name))
    assert len(found) == 20  # db-1000 ... db-1900, db-10000 ... db-11900
