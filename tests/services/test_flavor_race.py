"""A flavor deleted while a server create that named it is under way (PostgreSQL, two
API workers: SQLite serialises the writers, so the race is PostgreSQL's).

The create reads the flavor FOR KEY SHARE, so the delete waits for it and then finds the
new server (the flavor is kept, hidden). Should a server row still name a flavor deleted
since it was read, the create is Nova's 400, not a foreign-key 500.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.domain.context import RequestContext
from canopy.domain.errors import InvalidRequest
from canopy.services import flavors
from canopy.services.servers import CreateServer
from canopy.store.models import Flavor, Server
from tests.controllers.harness import Plane, make_plane


async def _plane(db_url: str, tmp_path: Path) -> Plane:
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite serialises the two writers; the race is PostgreSQL's")
    p = await make_plane(db_url, tmp_path)
    async with p.db.session() as s:
        await flavors.create(s, p.clock, flavors.NewFlavor("race", "race", 512, 1, 1))
    return p


async def _remove(p: Plane) -> None:
    async with p.db.session() as s:
        await flavors.remove(s, p.clock, "race")


async def test_a_delete_waits_for_the_create_that_read_the_flavor(
    db_url: str, tmp_path: Path
) -> None:
    p = await _plane(db_url, tmp_path)
    try:
        async with p.db.session() as s1:
            assert (await flavors.bootable(s1, "race", p.ctx)).id == "race"
            delete = asyncio.create_task(_remove(p))  # an admin's delete, another worker
            done, _ = await asyncio.wait({delete}, timeout=0.5)
            assert not done, "the delete did not wait for the create's lock"
            req = CreateServer(name="vm", flavor="race", image="cirros")
            await p.service.create(p.ctx, req, session=s1)
        await delete
        async with p.db.read() as s:
            kept = await s.get(Flavor, "race")
            users = list(await s.scalars(select(Server.name).where(Server.flavor_id == "race")))
        assert kept is not None and kept.deleted_at is not None  # kept for its server
        assert users == ["vm"]
    finally:
        await p.close()


async def test_a_flavor_gone_under_a_create_is_novas_400(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the lock (a read that took none), the foreign key is the last word."""
    p = await _plane(db_url, tmp_path)

    async def unlocked(s: AsyncSession, ref: str, ctx: RequestContext) -> Flavor:
        flavor = await s.get(Flavor, ref)
        assert flavor is not None
        return flavor

    try:
        monkeypatch.setattr(flavors, "bootable", unlocked)
        with pytest.raises(InvalidRequest) as e:
            async with p.db.session() as s1:
                read = await flavors.bootable(s1, "race", p.ctx)  # kept in s1's identity map
                assert read.id == "race"
                await _remove(p)  # no server names it yet: really deleted
                req = CreateServer(name="vm", flavor="race", image="cirros")
                await p.service.create(p.ctx, req, session=s1)
        assert str(e.value) == "Flavor race could not be found."
        async with p.db.read() as s:
            assert await s.get(Flavor, "race") is None
    finally:
        await p.close()
