"""Seeding at each start: a config flavor deleted in use whose name a new flavor took.

A flavor deleted while servers use it keeps its row (hidden); a flavor made through the
API since may hold its name. The seed leaves the config flavor deleted (and says so in
the log) instead of reviving it, which the unique live name would refuse at every start.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import select

from canopy.reconcile import seed
from canopy.services import flavors
from canopy.services.servers import CreateServer
from canopy.store.models import Flavor
from tests.controllers.harness import make_plane


async def test_a_restart_survives_a_deleted_config_flavors_name_reused(
    db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
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
        with caplog.at_level(logging.WARNING, logger="canopy.reconcile"):
            await seed(p.db, p.settings, p.clock)  # what every start does
        assert any("stays deleted" in r.getMessage() for r in caplog.records)
        async with p.db.read() as s:
            live = list(
                await s.scalars(
                    select(Flavor.id).where(Flavor.name == tiny.name, Flavor.deleted_at.is_(None))
                )
            )
        assert live == ["own-tiny"]
        async with p.db.read() as s:
            kept = await s.get(Flavor, "1")
        assert kept is not None and kept.deleted_at is not None
    finally:
        await p.close()
