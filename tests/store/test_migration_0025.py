"""Migration 0025 (the project page-order index) goes down and up again."""

from __future__ import annotations

from sqlalchemy import inspect

from canopy.store.db import Database
from canopy.store.migrate import current_revision, head_revision, upgrade

from .test_migration_0005 import _downgrade


async def _indexes(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        found = await conn.run_sync(lambda c: inspect(c).get_indexes("servers"))
    return {str(ix["name"]) for ix in found}


async def test_down_and_up_again(db: Database) -> None:
    await upgrade(db)
    assert "ix_servers_project_order" in await _indexes(db)
    await _downgrade(db, "0024")
    assert await current_revision(db) == "0024"
    assert "ix_servers_project_order" not in await _indexes(db)
    await upgrade(db)
    assert await current_revision(db) == head_revision()
    assert "ix_servers_project_order" in await _indexes(db)
