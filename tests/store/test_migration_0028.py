"""Migration 0028 (clouds.*_others) goes down and up again with the clouds it holds: what
others use is dropped on the way down and comes back unknown (the next inventory pass
fills it), while canopy's capacity stays."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, update

from canopy.domain.clock import FakeClock
from canopy.reconcile import seed
from canopy.store.db import Database
from canopy.store.migrate import current_revision, head_revision, upgrade
from canopy.store.models import Cloud

from .helpers import settings
from .test_migration_0005 import _downgrade

OTHERS = {"vcpus_others", "ram_mb_others", "instances_others"}


async def _columns(db: Database) -> set[str]:
    async with db.engine.connect() as conn:

        def read(sync_conn: object) -> set[str]:
            return {c["name"] for c in inspect(sync_conn).get_columns("clouds")}

        return await conn.run_sync(read)


async def test_down_and_up_again(db: Database, tmp_path: Path) -> None:
    clock = FakeClock()
    await seed(db, settings(str(tmp_path)), clock)
    async with db.session() as s:
        await s.execute(
            update(Cloud).where(Cloud.name == "private").values(vcpus_capacity=6, vcpus_others=4)
        )
    await _downgrade(db, "0027")
    assert await current_revision(db) == "0027"
    cols = await _columns(db)
    assert not OTHERS & cols and "vcpus_capacity" in cols
    await upgrade(db)
    assert await current_revision(db) == head_revision()
    assert await _columns(db) >= OTHERS
    async with db.session() as s:
        private = await s.get(Cloud, "private")
        assert private is not None and private.vcpus_capacity == 6
        assert (private.vcpus_others, private.ram_mb_others, private.instances_others) == (
            None,
            None,
            None,
        )
        private.vcpus_others = 2
    async with db.read() as s:
        again = await s.get(Cloud, "private")
        assert again is not None and again.vcpus_others == 2
