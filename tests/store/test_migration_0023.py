"""Migration 0023 (flavor management) goes down and up again with the flavors it holds,
a deleted flavor sharing its name with a live one included."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select, text

from canopy.domain.clock import FakeClock
from canopy.reconcile import seed
from canopy.store.db import Database
from canopy.store.migrate import current_revision, head_revision, upgrade
from canopy.store.models import Flavor, FlavorProject

from .helpers import settings
from .test_migration_0005 import _downgrade


async def test_down_and_up_again(db: Database, tmp_path: Path) -> None:
    clock = FakeClock()
    await seed(db, settings(str(tmp_path)), clock)
    async with db.session() as s:
        old = await s.scalar(select(Flavor).where(Flavor.name == "m1.small"))
        assert old is not None
        old.deleted_at = clock.now()  # deleted while in use ...
        s.add(Flavor(id="new-small", name="m1.small", vcpus=4, ram_mb=512, created_at=clock.now()))
        s.add(FlavorProject(flavor_id="new-small", project_id="p1"))
    old_id = old.id
    await _downgrade(db, "0022")
    assert await current_revision(db) == "0022"
    async with db.engine.begin() as conn:
        rows = dict((await conn.execute(text("SELECT id, name FROM flavors"))).all())
    assert rows["new-small"] == "m1.small" and rows[old_id] == old_id  # renamed to be unique
    await upgrade(db)
    assert await current_revision(db) == head_revision()
    async with db.session() as s:
        f = await s.get(Flavor, "new-small")
        assert f is not None and f.deleted_at is None and f.extra_specs is None
        assert (f.ephemeral_gb, f.swap_mb, f.rxtx_factor) == (0, 0, 1.0)
        # The name is unique among live flavors again, and only among them.
        gone = await s.get(Flavor, old_id)
        assert gone is not None
        gone.name, gone.deleted_at = "m1.small", clock.now()
