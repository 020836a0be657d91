"""The migrations build the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from canopy.store.db import Database
from canopy.store.migrate import (
    UNMODELLED_TABLES,
    alembic_config,
    current_revision,
    include_object,
    upgrade,
)
from canopy.store.models import Base

# The tables the control plane cannot run without; later migrations may add more.
CORE_TABLES = {
    "projects",
    "quotas",
    "clouds",
    "flavors",
    "flavor_mappings",
    "images",
    "image_mappings",
    "server_groups",
    "servers",
    "placements",
    "claims",
    "instance_actions",
    "instance_action_events",
    "jobs",
}


def head() -> str:
    h = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert h is not None
    return h


async def test_every_table_exists(db: Database) -> None:
    def names(conn: Connection) -> set[str]:
        return set(inspect(conn).get_table_names())

    async with db.engine.connect() as conn:
        tables = await conn.run_sync(names)
    assert tables >= CORE_TABLES
    # Exactly the models' tables: none missing a migration, none left behind by one; and
    # on SQLite, the trigram index of names (an FTS5 table and its shadow tables).
    modelled = {t for t in tables if not t.startswith(UNMODELLED_TABLES)}
    assert modelled == set(Base.metadata.tables) | {"alembic_version"}
    assert (tables != modelled) == db.is_sqlite


async def test_current_revision_is_head(db: Database) -> None:
    assert await current_revision(db) == head()


async def test_schema_matches_the_models(db: Database) -> None:
    """Autogenerate finds nothing to do: no model change is missing a migration."""

    def diff(conn: Connection) -> list[Any]:
        ctx = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_object": include_object}
        )
        return list(compare_metadata(ctx, Base.metadata))

    async with db.engine.connect() as conn:
        changes = await conn.run_sync(diff)
    assert changes == []


async def test_indexes_the_hot_queries_need(db: Database) -> None:
    def indexes(conn: Connection) -> dict[str, list[str]]:
        return {i["name"]: list(i["column_names"]) for i in inspect(conn).get_indexes("servers")}

    async with db.engine.connect() as conn:
        idx = await conn.run_sync(indexes)
    assert idx["ix_servers_project_created"] == ["project_id", "deleted", "created_at", "id"]
    assert idx["ix_servers_phase"] == ["phase", "next_attempt_at"]
    assert idx["ix_servers_cloud_remote"] == ["cloud", "remote_id"]
    assert idx["ix_servers_project_updated"] == ["project_id", "updated_at"]


async def test_upgrade_again_is_a_no_op(db: Database) -> None:
    await upgrade(db)
    assert await current_revision(db) == head()


async def test_fresh_sqlite_file_from_nothing(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "fresh.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        assert await current_revision(db) is None
        await upgrade(db)
        assert path.exists()
        assert await current_revision(db) == head()
    finally:
        await db.dispose()
