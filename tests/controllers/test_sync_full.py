"""When sync lists a cloud fully (controllers/sync_full.py): by time on a cloud that lists
changes since, every pass on one that cannot."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from canopy.domain.states import Ability, RemoteState
from canopy.providers.base import Abilities, ListPage

from .harness import PRIVATE, Plane, make_plane

CLOUDS = (
    """
[controllers]
sync_seconds = 5
full_sync_seconds = 60
"""
    + PRIVATE
)


def _count_listings(p: Plane, *, drop_deleted: bool = False) -> list[bool]:
    """Record, per page asked for, whether it was a full listing (no changes-since).
    With `drop_deleted`, a changes-since page leaves out the deleted servers, as a cloud
    that purged them would."""
    sim = p.sim("private")
    inner = sim.list_page
    full: list[bool] = []

    async def list_page(since: datetime | None, marker: str | None, limit: int) -> ListPage:
        full.append(since is None)
        page = await inner(since, marker, limit)
        if drop_deleted and since is not None:
            kept = [r for r in page.servers if r.state != RemoteState.DELETED]
            return ListPage(kept, page.next)
        return page

    sim.list_page = list_page  # type: ignore[method-assign]
    return full


async def _passes(p: Plane, n: int, every: float = 5.0) -> None:
    for _ in range(n):
        p.clock.advance(every)
        assert await p.worker.sync.sync_cloud("private", force=True)


async def test_a_changes_since_cloud_is_listed_fully_only_when_the_time_has_passed(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        await p.create_active()
        await _passes(p, 1)  # whatever came before, a pass has run: the clock starts here
        full = _count_listings(p)
        p.worker.sync._healed["private"] = p.clock.now()  # a healing pass just began
        await _passes(p, 11)  # 55 s: changes since, every one
        assert full == [False] * 11
        await _passes(p, 1)  # 60 s since the last healing pass
        assert full[11:] == [True]
        await _passes(p, 3)  # and the clock starts again
        assert full[12:] == [False] * 3
    finally:
        await p.close()


async def test_a_cloud_without_changes_since_is_listed_fully_every_pass(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        [sid] = await p.create_active()
        sim = p.sim("private")
        sim.abilities = Abilities(missing={Ability.CHANGES_SINCE: "not in this test"})
        full = _count_listings(p)
        await _passes(p, 5)
        assert full == [True] * 5
        # So a server deleted behind canopy's back is found by the next pass.
        server = await p.service.get(p.ctx, sid)
        assert server.remote_id is not None
        assert await sim.delete_out_of_band(server.remote_id)
        await _passes(p, 1)
        assert (await p.service.get(p.ctx, sid)).status == "ERROR"
    finally:
        await p.close()


@pytest.mark.parametrize("misses", [False, True])
async def test_an_out_of_band_delete_is_found_by_changes_since_or_by_the_healing_pass(
    db_url: str, tmp_path: Path, misses: bool
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        [sid] = await p.create_active()
        await _passes(p, 1)
        full = _count_listings(p, drop_deleted=misses)
        p.worker.sync._healed["private"] = p.clock.now()
        server = await p.service.get(p.ctx, sid)
        assert server.remote_id is not None
        assert await p.sim("private").delete_out_of_band(server.remote_id)
        await _passes(p, 1)
        status: Any = (await p.service.get(p.ctx, sid)).status
        if not misses:  # the sim's changes-since lists it DELETED: found at once
            assert status == "ERROR"
            return
        assert status == "ACTIVE"  # a changes-since listing that misses deletions
        await _passes(p, 10)
        assert (await p.service.get(p.ctx, sid)).status == "ACTIVE"
        assert not any(full)
        await _passes(p, 1)  # 60 s on: the healing pass lists everything, finds it gone
        assert full[-1]
        server = await p.service.get(p.ctx, sid)
        assert server.status == "ERROR"
        assert server.fault_message is not None
        assert "deleted outside canopy" in server.fault_message
    finally:
        await p.close()
