"""REVIEW (failing on purpose until fixed): a restart after a config flavor was deleted
in use and its name given to a new flavor.

reconcile.py:98-110 `_upsert_flavors` finds the config flavor by id even when deleted
(a flavor deleted while servers use it keeps its row) and clears its `deleted_at`; a
flavor made through the API since holds the same name, so the partial unique index on
live names refuses the seed: canopy no longer starts (every start fails the same way).
Suggested fix: when the config's flavor was deleted and another live flavor now has its
name, leave it deleted (log it), or refuse the API create of a config flavor's name.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from canopy.reconcile import seed
from canopy.services import flavors
from canopy.services.servers import CreateServer
from canopy.store.models import Flavor
from tests.controllers.harness import make_plane


async def test_review_a_restart_survives_a_deleted_config_flavors_name_reused(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path)
    try:
        async with p.db.read() as s:
            tiny = await s.get(Flavor, "1")
        assert tiny is not None
        await p.service.create(p.ctx, CreateServer(name="vm", flavor="1", image="cirros"))
        async with p.db.session() as s:
            await flavors.remove(s, p.clock, "1")  # in use: kept, hidden
        async with p.db.session() as s:
            new = flavors.NewFlavor("own-tiny", tiny.name, 256, 1, 1)
            await flavors.create(s, p.clock, new)
        await seed(p.db, p.settings, p.clock)  # what every start does
        async with p.db.read() as s:
            live = list(
                await s.scalars(
                    select(Flavor.id).where(Flavor.name == tiny.name, Flavor.deleted_at.is_(None))
                )
            )
        assert len(live) == 1
    finally:
        await p.close()
