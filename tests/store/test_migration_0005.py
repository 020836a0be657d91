"""Migration 0005 (clouds draining) carries the clouds a database already holds."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from canopy.domain.clock import FakeClock
from canopy.providers.registry import draining_settings
from canopy.reconcile import CloudState, cloud_state, draining_clouds, seed
from canopy.store.db import Database
from canopy.store.migrate import current_revision, downgrade, head_revision, upgrade
from canopy.store.models import Cloud

from .helpers import CLOUDS, server_row, settings


async def _downgrade(db: Database, revision: str) -> None:
    await downgrade(db, revision)


async def test_clouds_at_0002_are_carried_and_can_then_drain(db: Database, tmp_path: Path) -> None:
    clock = FakeClock()
    await seed(db, settings(str(tmp_path)), clock)
    async with db.session() as s:
        s.add(server_row(clock.now(), cloud="public", phase="steady"))
    await _downgrade(db, "0005-1")  # the revision before this one, whatever it is
    try:
        assert await current_revision(db) != head_revision()
        async with db.engine.begin() as conn:
            # As the previous release left it: `public` out of the config, only disabled.
            await conn.execute(text("UPDATE clouds SET enabled = false WHERE name = 'public'"))
        await upgrade(db)
        assert await current_revision(db) == head_revision()
        async with db.read() as s:
            rows = {c.name: c for c in (await s.execute(Cloud.__table__.select())).all()}
        assert set(rows) == {"private", "public"}
        assert all(r.removed_at is None and r.driver_settings is None for r in rows.values())
        assert rows["private"].enabled and not rows["public"].enabled

        # The next start with the config that left `public` out: it drains, but since its
        # settings were never kept, a worker cannot build its driver (and says so).
        await seed(db, settings(str(tmp_path), clouds=[CLOUDS[0]]), clock)
        (draining,) = await draining_clouds(db)
        assert (draining.name, draining.servers, draining.settings) == ("public", 1, None)
        cfg = settings(str(tmp_path), clouds=[CLOUDS[0]])
        assert draining_settings(cfg, {"public": None}) == []
        async with db.read() as s:
            public = await s.get(Cloud, "public")
            private = await s.get(Cloud, "private")
            assert public is not None and private is not None
            assert cloud_state(public, 1) is CloudState.DRAINING
            assert private.driver_settings is not None
            assert private.driver_settings["sim"]["hosts"] == 2
    finally:
        await upgrade(db)
