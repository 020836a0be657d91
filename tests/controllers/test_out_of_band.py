"""Drift between the record and the clouds is repaired by sync within one interval."""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy import update

from canopy.store.models import Server

from .harness import PRIVATE, make_plane

CLOUDS = (
    """
[controllers]
sync_seconds = 5
full_sync_every = 100
"""
    + PRIVATE
)


async def test_deleted_in_the_cloud_is_detected_within_one_sync_interval(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        [sid] = await p.create_active()
        server = await p.service.get(p.ctx, sid)
        assert server.remote_id is not None
        # Let any sync that is due run, so the next one is a full interval away.
        await p.worker.sync.run_once()
        assert await p.sim("private").delete_out_of_band(server.remote_id)
        # Within the interval nothing is due yet; at its end, sync notices.
        await p.worker.step()
        p.clock.advance(5.0)
        await p.worker.step()
        server = await p.service.get(p.ctx, sid)
        assert server.status == "ERROR"
        assert server.fault_message is not None
        assert "deleted outside canopy" in server.fault_message
        assert p.sim("private").name in server.fault_message
        # Its claim is given back.
        async with p.db.read() as s:
            from canopy.store.models import Cloud

            cloud = await s.get(Cloud, "private")
            assert cloud is not None and cloud.instances_claimed == 0
        # The user can still delete it, and it goes away cleanly.
        await p.service.delete(p.ctx, sid)

        async def deleted() -> bool:
            return (await p.service.get(p.ctx, sid)).status == "DELETED"

        await p.run_until(deleted)
    finally:
        await p.close()


async def test_out_of_band_delete_of_a_server_being_deleted_just_finishes_it(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        [sid] = await p.create_active()
        server = await p.service.get(p.ctx, sid)
        assert server.remote_id is not None
        await p.service.delete(p.ctx, sid)
        await p.sim("private").delete_out_of_band(server.remote_id)

        async def deleted() -> bool:
            return (await p.service.get(p.ctx, sid)).status == "DELETED"

        await p.run_until(deleted)
        assert (await p.service.get(p.ctx, sid)).fault_message is None
    finally:
        await p.close()


async def test_untracked_tagged_server_is_collected(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        await p.create_active()
        stray = await p.sim("private").create_out_of_band(
            str(uuid.uuid4()), "stray", installation=await p.rt.installation_id()
        )
        for _ in range(3):
            await p.step(advance=5.0)
        live = {r.remote_id for r in await p.sim("private").all_servers()}
        assert stray.remote_id not in live
        assert len(live) == 1
    finally:
        await p.close()


async def test_an_untagged_server_is_never_touched_even_when_the_cloud_lists_it(
    db_url: str, tmp_path: Path
) -> None:
    # A cloud that cannot filter its list by tag returns the operator's own servers too:
    # sync deletes only what carries a canopy id that no row wants.
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sim = p.sim("private")
        sim.settings.list_untagged = True
        await p.create_active()
        mine = await sim.create_out_of_band(None, "operator-vm")
        stray = await sim.create_out_of_band(
            str(uuid.uuid4()), "stray", installation=await p.rt.installation_id()
        )
        listed = {r.remote_id for r in await sim.list()}
        assert {mine.remote_id, stray.remote_id} <= listed
        for _ in range(3):  # changes-since passes, and a full one (full_sync_every = 100:
            await p.step(advance=5.0)  # the first pass is full)
        await p.worker.sync.sync_cloud("private", force=True)
        live = {r.remote_id: r.canopy_id for r in await sim.all_servers()}
        assert mine.remote_id in live and live[mine.remote_id] is None
        assert stray.remote_id not in live
        assert len(live) == 2  # canopy's own server and the operator's
        # Nothing in canopy's record changed for it either.
        assert await p.count() == 1
    finally:
        await p.close()


async def test_server_created_but_never_recorded_is_adopted_not_duplicated(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        [sid] = await p.create(1)
        await p.worker.placement.run_once()
        # The worker committed that a create was asked for (as it does before every create
        # call), the cloud created it, and the worker died before recording the answer.
        async with p.db.session() as s:
            await s.execute(
                update(Server).where(Server.id == sid).values(create_requested_at=p.clock.now())
            )
        created = await p.sim("private").create_out_of_band(
            sid, "vm", installation=await p.rt.installation_id()
        )
        for _ in range(6):
            await p.step(advance=5.0)
        server = await p.service.get(p.ctx, sid)
        assert server.status == "ACTIVE"
        assert server.remote_id == created.remote_id
        live = await p.sim("private").all_servers()
        assert [r.canopy_id for r in live] == [sid]
    finally:
        await p.close()


async def test_stopped_behind_our_back_is_shown_stopped(db_url: str, tmp_path: Path) -> None:
    from canopy.domain.states import PowerAction

    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        [sid] = await p.create_active()
        server = await p.service.get(p.ctx, sid)
        assert server.remote_id is not None
        await p.sim("private").power_out_of_band(server.remote_id, PowerAction.STOP)

        async def shutoff() -> bool:
            return (await p.service.get(p.ctx, sid)).status == "SHUTOFF"

        await p.run_until(shutoff, advance=5.0)
        assert (await p.service.get(p.ctx, sid)).desired_state == "stopped"
    finally:
        await p.close()
