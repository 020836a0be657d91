"""Migration 0024 (servers.host) goes down and up again with the servers it holds: the
host is dropped on the way down, and comes back empty (sync fills it in)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, text

from canopy.domain.clock import FakeClock
from canopy.reconcile import seed
from canopy.store.db import Database
from canopy.store.migrate import current_revision, head_revision, upgrade
from canopy.store.models import Server

from .helpers import server_row, settings
from .test_migration_0005 import _downgrade


async def _columns(db: Database) -> tuple[set[str], set[str]]:
    async with db.engine.connect() as conn:

        def read(sync_conn: object) -> tuple[set[str], set[str]]:
            i = inspect(sync_conn)
            cols = {c["name"] for c in i.get_columns("servers")}
            return cols, {str(ix["name"]) for ix in i.get_indexes("servers")}

        return await conn.run_sync(read)


async def test_down_and_up_again(db: Database, tmp_path: Path) -> None:
    clock = FakeClock()
    await seed(db, settings(str(tmp_path)), clock)
    async with db.session() as s:
        s.add(server_row(clock.now(), sid="on-h1", cloud="public", phase="steady", host="h1"))
    await _downgrade(db, "0023")
    assert await current_revision(db) == "0023"
    cols, indexes = await _columns(db)
    assert "host" not in cols and "ix_servers_cloud_host" not in indexes
    async with db.engine.begin() as conn:
        rows = (await conn.execute(text("SELECT id, cloud FROM servers"))).all()
    assert [tuple(r) for r in rows] == [("on-h1", "public")]
    await upgrade(db)
    assert await current_revision(db) == head_revision()
    cols, indexes = await _columns(db)
    assert "host" in cols and "ix_servers_cloud_host" in indexes
    async with db.session() as s:
        server = await s.get(Server, "on-h1")
        assert server is not None and server.cloud == "public" and server.host is None
        server.host = "h2"
    async with db.read() as s:
        again = await s.get(Server, "on-h1")
        assert again is not None and again.host == "h2"
