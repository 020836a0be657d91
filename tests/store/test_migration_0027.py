"""Migration 0027 (`id` in the project page-order indexes) goes down and up again."""

from __future__ import annotations

from sqlalchemy import inspect

from canopy.store.db import Database
from canopy.store.migrate import current_revision, head_revision, upgrade

from .test_migration_0005 import _downgrade


async def _columns(db: Database) -> dict[str, list[str]]:
    async with db.engine.connect() as conn:
        found = await conn.run_sync(lambda c: inspect(c).get_indexes("servers"))
    return {str(ix["name"]): [str(c) for c in ix["column_names"]] for ix in found}


async def test_down_and_up_again(db: Database) -> None:
    await upgrade(db)
    ix = await _columns(db)
    assert ix["ix_servers_project_order"] == [
        "project_id", "created_at", "id", "updated_at", "deleted"
    ]  # fmt: skip
    assert ix["ix_servers_project_created"] == ["project_id", "deleted", "created_at", "id"]
    assert ix["ix_servers_created"] == ["created_at", "id", "deleted"]
    assert "ix_servers_deleted_created" not in ix
    await _downgrade(db, "0026")
    assert await current_revision(db) == "0026"
    ix = await _columns(db)
    assert ix["ix_servers_project_order"] == ["project_id", "created_at", "updated_at", "deleted"]
    assert ix["ix_servers_project_created"] == ["project_id", "deleted", "created_at"]
    assert ix["ix_servers_deleted_created"] == ["deleted", "created_at"]
    assert "ix_servers_created" not in ix
    await upgrade(db)
    assert await current_revision(db) == head_revision()
    assert "id" in (await _columns(db))["ix_servers_project_created"]
