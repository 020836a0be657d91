"""Listing: canopy-tagged servers only, and changes-since like Nova's (deleted included)."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from typing import Any

import pytest

from canopy.domain.clock import FakeClock
from canopy.domain.states import PowerAction, RemoteState
from canopy.providers.sim import listing
from canopy.providers.sim.db import _SCHEMA

from .helpers import MakeSim, spec


async def test_list_returns_only_live_canopy_tagged_servers(make_sim: MakeSim) -> None:
    sim = make_sim()
    kept = await sim.create(spec())
    gone = await sim.create(spec())
    await sim.delete(gone.remote_id)
    await sim.create_out_of_band(None, "operator-pet")
    adopted = await sim.create_out_of_band("abcd1234-0000", "leaked")

    listed = await sim.list()
    assert {s.remote_id for s in listed} == {kept.remote_id, adopted.remote_id}
    assert all(s.canopy_id is not None for s in listed)
    # The untagged server exists; canopy just never sees it.
    assert len(await sim.all_servers()) == 3


async def test_changes_since_reports_a_boot_that_completed(
    make_sim: MakeSim, clock: FakeClock
) -> None:
    sim = make_sim(boot_seconds=2.0)
    old = await sim.create(spec())
    clock.advance(10)  # `old` booted long ago
    booting = await sim.create(spec())
    clock.advance(1)
    mark = clock.now()
    assert await sim.list(changes_since=mark) == []  # nothing changed yet

    clock.advance(1.5)  # the boot ended 0.5 s ago
    changed = await sim.list(changes_since=mark)
    assert [(s.remote_id, s.state) for s in changed] == [(booting.remote_id, RemoteState.RUNNING)]
    assert changed[0].updated_at == mark + timedelta(seconds=1)
    assert old.remote_id not in {s.remote_id for s in changed}


async def test_changes_since_includes_deleted_servers(make_sim: MakeSim, clock: FakeClock) -> None:
    sim = make_sim(boot_seconds=0.0)
    a = await sim.create(spec())
    b = await sim.create(spec())
    clock.advance(5)
    mark = clock.now()
    await sim.delete(a.remote_id)

    changed = await sim.list(changes_since=mark)
    assert [(s.remote_id, s.state) for s in changed] == [(a.remote_id, RemoteState.DELETED)]
    # Without changes_since, deleted servers are not listed.
    assert [s.remote_id for s in await sim.list()] == [b.remote_id]


async def test_a_server_deleted_while_booting_is_not_reported_again_when_boot_would_end(
    make_sim: MakeSim, clock: FakeClock
) -> None:
    sim = make_sim(boot_seconds=5.0)
    s = await sim.create(spec())
    clock.advance(1)
    await sim.delete(s.remote_id)
    clock.advance(1)
    mark = clock.now()
    clock.advance(10)
    assert await sim.list(changes_since=mark) == []


async def test_out_of_band_delete_shows_up_as_deleted_in_changes_since(
    make_sim: MakeSim, clock: FakeClock
) -> None:
    sim = make_sim(boot_seconds=0.0)
    s = await sim.create(spec())
    clock.advance(3)
    mark = clock.now()
    clock.advance(1)
    assert await sim.delete_out_of_band(s.remote_id) is True
    assert await sim.delete_out_of_band(s.remote_id) is False

    changed = await sim.list(changes_since=mark)
    assert len(changed) == 1
    assert changed[0].remote_id == s.remote_id
    assert changed[0].state is RemoteState.DELETED
    assert changed[0].updated_at == mark + timedelta(seconds=1)


async def test_changes_since_reports_power_actions_when_they_start_and_end(
    make_sim: MakeSim, clock: FakeClock
) -> None:
    sim = make_sim(boot_seconds=0.0, action_seconds=2.0)
    s = await sim.create(spec())
    clock.advance(5)
    await sim.power(s.remote_id, PowerAction.REBOOT_SOFT)
    clock.advance(1)
    mark = clock.now()
    assert await sim.list(changes_since=mark) == []  # the reboot started before the mark
    clock.advance(1.5)
    changed = await sim.list(changes_since=mark)
    assert [(c.remote_id, c.state) for c in changed] == [(s.remote_id, RemoteState.RUNNING)]


async def test_changes_since_is_inclusive_and_accepts_naive_utc(
    make_sim: MakeSim, clock: FakeClock
) -> None:
    sim = make_sim(boot_seconds=0.0)
    s = await sim.create(spec())
    assert s.updated_at is not None
    assert [c.remote_id for c in await sim.list(changes_since=s.updated_at)] == [s.remote_id]
    naive = s.updated_at.replace(tzinfo=None)
    assert [c.remote_id for c in await sim.list(changes_since=naive)] == [s.remote_id]
    later = s.updated_at + timedelta(microseconds=1)
    assert await sim.list(changes_since=later) == []


def test_changes_since_reads_by_index_never_every_server() -> None:
    """A poll for changes costs what changed: every arm of the query is an index range."""
    conn = sqlite3.connect(":memory:")
    for statement in _SCHEMA:
        conn.execute(statement)
    values = {"since": 1_000, "now": 2_000, "after": 0, "n": -1}
    for tagged in (True, False):
        sql = listing._changed(tagged)  # what a changes-since page runs
        assert conn.execute(sql, values).fetchall() == []
        plan = " | ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", values))
        assert "SCAN" not in plan, plan
        for index in ("servers_updated_at", "servers_ready_at", "servers_transition_until"):
            assert index in plan, plan


async def test_a_page_gives_the_loop_back_between_chunks_and_is_one_snapshot(
    make_sim: MakeSim, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page is read on the loop's thread a chunk at a time (no worker thread computing
    beside the loop); other tasks run between its chunks, and what they change meanwhile
    is not in the page: it is read from one moment, as a cloud's answer is."""
    import asyncio
    import threading

    sim = make_sim(boot_seconds=0.0, hosts=8, host_vcpus=64)
    n = 3 * listing.CHUNK + 1
    made = [await sim.create(spec(ram_mb=512, disk_gb=1)) for _ in range(n)]
    reading = asyncio.Event()
    real_row = listing._row

    threads: set[int] = set()

    def row(values: Any) -> Any:
        reading.set()  # the page's statement has begun
        threads.add(threading.get_ident())
        return real_row(values)

    monkeypatch.setattr(listing, "_row", row)
    turns = 0

    async def meanwhile() -> None:
        nonlocal turns
        await reading.wait()
        await sim.delete_out_of_band(made[-1].remote_id)
        while True:
            turns += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(meanwhile())
    page = await sim.list_page(None, None, n)
    task.cancel()
    assert turns >= 2  # it ran between the page's chunks
    assert threads == {threading.get_ident()}  # turned into objects on the loop's thread
    # Deleted after the page's statement began: the page still shows it; the next not.
    assert [s.remote_id for s in page.servers] == [m.remote_id for m in made]
    assert [s.remote_id for s in await sim.list()] == [m.remote_id for m in made[:-1]]


async def test_a_page_cancelled_while_its_statement_begins_waits_for_the_thread() -> None:
    """The statement is begun in a worker thread; cancelled meanwhile, the page does not
    give its connection back (to be lent again) until the thread is done with it."""
    import asyncio
    import threading

    conn = sqlite3.connect(":memory:", check_same_thread=False)
    started, release = threading.Event(), threading.Event()

    def gate() -> int:  # runs in the thread, inside the statement's first step
        started.set()
        release.wait(10)
        return 1

    conn.create_function("gate", 0, gate)
    task = asyncio.create_task(listing._begun(conn, "SELECT gate()", {}))
    assert await asyncio.to_thread(started.wait, 10)
    task.cancel()
    for _ in range(5):
        await asyncio.sleep(0)
    assert not task.done()  # still waiting for the thread, which still has the connection
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert conn.execute("SELECT 2").fetchone() == (2,)
    conn.close()
