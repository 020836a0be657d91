"""Two installations sharing one account: each tags its servers with its installation id,
and sync adopts and collects as leaks only its own. Servers from before the tag (none)
are canopy's only when a row of this database carries their canopy id."""

from __future__ import annotations

import uuid
from pathlib import Path

from canopy.store.installation import installation_id

from .harness import Plane, make_plane

CLOUDS = """
[[clouds]]
name = "private"
[clouds.sim]
hosts = 2
boot_seconds = 1.0
api_latency_ms = 0
"""


async def _remote(p: Plane) -> dict[str, tuple[str | None, str | None]]:
    """remote id -> (canopy id, installation tag), for every live server of the cloud."""
    return {
        r.remote_id: (r.canopy_id, r.installation)
        for r in await p.sim("private").all_servers()
        if r.state.value != "deleted"
    }


async def test_the_id_is_made_once_and_kept(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        first = await installation_id(p.db, p.clock)
        assert len(first) == 32
        assert await installation_id(p.db, p.clock) == first
        assert await p.rt.installation_id() == first
    finally:
        await p.close()


async def test_servers_are_tagged_with_the_installation(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        [sid] = await p.create(1)

        async def active() -> bool:
            return (await p.service.get(p.ctx, sid)).status == "ACTIVE"

        await p.run_until(active)
        assert list((await _remote(p)).values()) == [(sid, await p.rt.installation_id())]
    finally:
        await p.close()


async def test_another_installations_servers_are_neither_adopted_nor_deleted(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sim = p.sim("private")
        mine = await p.rt.installation_id()
        theirs = uuid.uuid4().hex
        # The other installation's server: a canopy id no row here knows.
        foreign = await sim.create_out_of_band(str(uuid.uuid4()), "theirs", installation=theirs)
        # ... and one carrying the canopy id of a row of ours still waiting to be created
        # (as a copy of this database would make): not adopted.
        [sid] = await p.create(1)
        await p.worker.placement.run_once()
        clash = await sim.create_out_of_band(sid, "clash", installation=theirs)
        # Our own leak, for contrast: collected.
        leak = await sim.create_out_of_band(str(uuid.uuid4()), "leak", installation=mine)
        for _ in range(2):
            assert await p.worker.sync.sync_cloud("private", force=True)
        remote = await _remote(p)
        assert foreign.remote_id in remote and clash.remote_id in remote
        assert leak.remote_id not in remote
        server = await p.service.get(p.ctx, sid)
        assert server.remote_id != clash.remote_id  # not adopted
    finally:
        await p.close()


async def test_servers_from_before_the_tag_are_touched_only_with_a_row_here(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sim = p.sim("private")
        # No installation tag and a canopy id no row here knows: it may be another, older
        # installation's, so it is left alone.
        stray = await sim.create_out_of_band(str(uuid.uuid4()), "old-stray")
        # No tag, but the canopy id of a row of ours that never recorded it (a crash before
        # the upgrade): adopted, since only this database made that id.
        [sid] = await p.create(1)
        await p.worker.placement.run_once()
        made = await sim.create_out_of_band(sid, "old-mine")
        for _ in range(2):
            assert await p.worker.sync.sync_cloud("private", force=True)
        remote = await _remote(p)
        assert stray.remote_id in remote
        assert (await p.service.get(p.ctx, sid)).remote_id == made.remote_id
    finally:
        await p.close()
