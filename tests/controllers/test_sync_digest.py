"""A full sync between deep ones reads only what changed (controllers/sync_digest.py)."""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from canopy.controllers.sync_digest import CHUNK, Digest, alive_ids, release
from canopy.controllers.sync_turns import turn
from canopy.domain.specs import RemoteServer
from canopy.domain.states import Phase, PowerAction, RemoteState
from canopy.providers.base import ListPage
from canopy.store.models import Server
from tests.loop_turns import LoopTurns

from .harness import Plane, make_plane, statements

CLOUDS = """
[controllers]
sync_seconds = 5
full_sync_every = 1
sync_deep_every = {deep}

[[clouds]]
name = "private"
tier = 0
[clouds.sim]
hosts = 4
host_vcpus = 16
boot_seconds = 1
action_seconds = 1
"""

N = 24


async def _settled(p: Plane, n: int) -> list[str]:
    """`n` ACTIVE servers, each seen unchanged by a sync pass since (so in the digest)."""
    ids = await p.create_active(n, flavor="m1.tiny")
    for _ in range(2):
        p.clock.advance(5.0)
        assert await p.worker.sync.sync_cloud("private", force=True)
    return ids


def _named_ids(sql: str) -> int:
    inside = re.search(r"IN \(([^)]*)\)", sql)
    return 0 if inside is None else inside.group(1).count("?") + inside.group(1).count("$")


async def test_a_full_pass_between_deep_ones_reads_only_what_changed(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS.format(deep=100))
    try:
        ids = await _settled(p, N)
        sim = p.sim("private")
        gone, stopped = ids[1:4], ids[10]
        for sid in gone:
            server = await p.service.get(p.ctx, sid)
            assert server.remote_id is not None
            assert await sim.delete_out_of_band(server.remote_id)
        row = await p.service.get(p.ctx, stopped)
        assert row.remote_id is not None
        await sim.power_out_of_band(row.remote_id, PowerAction.STOP)
        leak = await sim.create_out_of_band(
            str(uuid.uuid4()), "stray", installation=await p.rt.installation_id()
        )
        p.clock.advance(5.0)

        with statements(p.db) as seen:
            assert await p.worker.sync.sync_cloud("private", force=True)

        for sid in ids:
            server = await p.service.get(p.ctx, sid)
            want = "ERROR" if sid in gone else "SHUTOFF" if sid == stopped else "ACTIVE"
            assert server.status == want, sid
        assert leak.remote_id not in {r.remote_id for r in await sim.list()}

        reads = [
            x
            for x in seen
            if x.startswith("SELECT") and "FROM servers" in x and "FOR UPDATE" not in x
        ]
        # No pass over the cloud's rows, and the rows read are the changed ones: compared by
        # id, the stopped server and the leak's canopy id; by remote id, the three gone.
        # (The locks taken to write them are ordered by id; SQLite has no FOR UPDATE.)
        assert not [x for x in reads if "ORDER BY servers.remote_id, servers.id" in x], reads
        by_id = [x for x in reads if "servers.id IN (" in x and "ORDER BY servers.id" not in x]
        by_remote = [x for x in reads if "servers.remote_id IN (" in x]
        assert sum(_named_ids(x) for x in by_id) == 2, by_id
        assert sum(_named_ids(x) for x in by_remote) == len(gone), by_remote
    finally:
        await p.close()


async def test_the_deep_pass_catches_a_row_changed_behind_syncs_back(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS.format(deep=3))
    try:
        ids = await _settled(p, 6)
        server = await p.service.get(p.ctx, ids[0])
        assert server.remote_id is not None
        # A row finished as deleted by hand in the database, its server left running:
        # nothing a controller does, so only a deep pass compares it and finds the leak.
        async with p.db.session() as s:
            await s.execute(
                update(Server).where(Server.id == ids[0]).values(deleted=True, phase=Phase.DONE)
            )
        passes = 0
        while server.remote_id in {r.remote_id for r in await p.sim("private").list()}:
            assert passes <= 3, "no deep pass came round within sync_deep_every full passes"
            p.clock.advance(5.0)
            assert await p.worker.sync.sync_cloud("private", force=True)
            passes += 1
        for sid in ids[1:]:
            assert (await p.service.get(p.ctx, sid)).status == "ACTIVE"
    finally:
        await p.close()


async def test_a_pass_that_fails_drops_the_digest(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS.format(deep=100))
    try:
        await _settled(p, 4)
        sync = p.worker.sync
        assert sync._digests["private"].complete
        p.sim("private").settings.transient_error_rate = 1.0  # the list fails: no reconcile
        p.clock.advance(5.0)
        await sync.sync_cloud("private", force=True)
        assert sync._digests["private"].complete  # a failed list changes nothing

        async def lost(*_: object) -> None:
            raise RuntimeError("the database went away mid-pass")

        p.sim("private").settings.transient_error_rate = 0.0
        original = sync._all_gone
        sync._all_gone = lost  # type: ignore[method-assign]
        p.clock.advance(5.0)
        with pytest.raises(RuntimeError):
            await sync.sync_cloud("private", force=True)
        sync._all_gone = original  # type: ignore[method-assign]
        assert "private" not in sync._digests  # the next full pass is a deep one
    finally:
        await p.close()


def test_one_full_pass_in_every_n_is_deep() -> None:
    d = Digest()
    assert d.deep_due(12)  # never built: deep
    d.complete = True
    runs = []
    for _ in range(24):
        deep = d.deep_due(3)
        runs.append(deep)
        d.since_deep = 0 if deep else d.since_deep + 1
    assert runs == [False, False, True] * 8
    assert Digest(complete=True).deep_due(1)  # every full pass deep


async def test_a_server_deleted_right_after_it_settles_is_noticed_between_deep_passes(
    db_url: str, tmp_path: Path
) -> None:
    # Its row was busy (booting) in the pass that settled it: the digest must still know
    # it, or a full pass between deep ones would never see it gone.
    p = await make_plane(db_url, tmp_path, toml=CLOUDS.format(deep=100))
    try:
        await _settled(p, 4)
        [sid] = await p.create(1, flavor="m1.tiny")

        async def ready() -> bool:
            return await p.count(status="ACTIVE") >= 5

        await p.run_until(ready)
        row = await p.service.get(p.ctx, sid)
        assert row.remote_id is not None
        assert await p.sim("private").delete_out_of_band(row.remote_id)
        p.clock.advance(5.0)
        assert await p.worker.sync.sync_cloud("private", force=True)
        gone = await p.service.get(p.ctx, sid)
        assert gone.status == "ERROR" and gone.phase == Phase.FAILED
    finally:
        await p.close()


async def test_a_big_listing_is_digested_a_chunk_at_a_time() -> None:
    """100,000 listed servers fingerprinted at once held the event loop for 150-350 ms every
    full pass (bench/loop_stalls.py): `changed`, `absent` and `alive_ids` give the loop back
    after each CHUNK, and still find exactly what moved, what went and what lives."""
    n = 5 * CHUNK + 7
    listed = [
        RemoteServer(f"r{i}", f"c{i}", f"vm{i}", RemoteState.RUNNING, {"net": [f"10.0.{i}"]})
        for i in range(n)
    ]
    digest = Digest()
    for r in listed:
        digest.record(r)
    digest.seen["gone-1"] = 1  # known, no longer listed
    moved = replace(listed[3], state=RemoteState.STOPPED)
    now = [*listed[:3], moved, *listed[4:-1], replace(listed[-1], state=RemoteState.DELETED)]
    async with LoopTurns() as turns:
        start = turns.n
        changed = await digest.changed(now, {"r7"})
        assert turns.n - start >= n // CHUNK  # the loop ran between chunks
        assert [r.remote_id for r in changed] == ["r3", "r7", f"r{n - 1}"]
        start = turns.n
        alive = await alive_ids(now)
        assert turns.n - start >= n // CHUNK
        assert len(alive) == n - 1 and f"r{n - 1}" not in alive
        start = turns.n
        assert await digest.absent(alive) == {"gone-1", f"r{n - 1}"}
        assert turns.n - start >= n // CHUNK


async def test_a_listing_is_released_a_chunk_at_a_time() -> None:
    """Freeing 100,000 listed servers at once held the loop for 20-30 ms at the end of
    every full pass: `release` empties the listing a CHUNK at a time."""
    listing = [RemoteServer(f"r{i}", None, f"vm{i}", RemoteState.RUNNING) for i in range(3 * CHUNK)]
    async with LoopTurns() as turns:
        start = turns.n
        await release(listing)
        assert listing == [] and turns.n - start >= 3


async def test_a_pass_releases_the_listing_it_was_given(db_url: str, tmp_path: Path) -> None:
    """`sync_cloud` empties the list the driver returned once its pass is over (the objects
    are freed a chunk at a time, not at once when the pass returns)."""
    assert CHUNK <= 2_000  # what the chunk tests above rely on: the loop back often enough
    p = await make_plane(db_url, tmp_path, toml=CLOUDS.format(deep=100))
    try:
        await _settled(p, 3)
        sim = p.sim("private")
        real = sim.list_page
        given: list[list[RemoteServer]] = []

        async def listing(changes_since: Any, marker: str | None, limit: int) -> ListPage:
            out = await real(changes_since, marker, limit)
            given.append(out.servers)
            return out

        sim.list_page = listing  # type: ignore[method-assign]
        p.clock.advance(5.0)
        assert await p.worker.sync.sync_cloud("private", force=True)
        assert len(given) == 1 and given[0] == []
    finally:
        await p.close()


async def test_passes_take_turns_one_slice_per_turn_of_the_loop() -> None:
    """20 clouds' deep passes, each giving the loop back between slices, still ran one
    slice of every pass per turn of the loop (a request waited 20 slices a turn): with
    turns, two passes' slices never overlap, alternate, and the loop runs between them."""
    log: list[str] = []
    inside = 0

    async def pass_(name: str) -> None:
        nonlocal inside
        for i in range(3):
            async with turn():
                inside += 1
                assert inside == 1  # one slice at a time in this loop
                log.append(f"{name}{i}")
                await asyncio.sleep(0)  # a slice that awaits (its read) keeps its turn
                inside -= 1

    async with LoopTurns() as loop_turns:
        seen: list[int] = []

        async def watch() -> None:
            while len(log) < 6:
                seen.append(loop_turns.n)
                await asyncio.sleep(0)

        await asyncio.gather(pass_("a"), pass_("b"), watch())
    assert log == ["a0", "b0", "a1", "b1", "a2", "b2"]  # round robin, first come first served
    assert len(seen) >= 6  # other work ran between the slices
