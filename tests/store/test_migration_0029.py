"""Migration 0029 (software_configs, software_deployments) goes down, dropping the API's
configs and deployments, and up again to empty tables that take rows."""

from __future__ import annotations

from sqlalchemy import func, inspect, select

from canopy.domain.clock import FakeClock
from canopy.store.db import Database
from canopy.store.migrate import current_revision, head_revision, upgrade
from canopy.store.models import SoftwareConfigRow, SoftwareDeploymentRow

from .test_migration_0005 import _downgrade

TABLES = {"software_configs", "software_deployments"}


async def _tables(db: Database) -> set[str]:
    async with db.engine.connect() as conn:

        def read(sync_conn: object) -> set[str]:
            return set(inspect(sync_conn).get_table_names())

        return await conn.run_sync(read)


async def test_down_and_up_again(db: Database) -> None:
    now = FakeClock().now()
    async with db.session() as s:
        s.add(SoftwareConfigRow(id="c", project_id="p", group="script", body={}, created_at=now))
        await s.flush()
        s.add(
            SoftwareDeploymentRow(
                id="d", project_id="p", config_id="c", server_id="s", created_at=now
            )
        )
    await _downgrade(db, "0028")
    assert await current_revision(db) == "0028"
    assert not TABLES & await _tables(db)
    await upgrade(db)
    assert await current_revision(db) == head_revision()
    assert await _tables(db) >= TABLES
    async with db.session() as s:
        assert await s.scalar(select(func.count()).select_from(SoftwareConfigRow)) == 0
        s.add(SoftwareConfigRow(id="c", project_id="p", group="script", body={}, created_at=now))
    async with db.read() as s:
        again = await s.get(SoftwareConfigRow, "c")
        assert again is not None and again.group == "script"
