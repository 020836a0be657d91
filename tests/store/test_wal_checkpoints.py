"""SQLite's WAL checkpoints run in a thread, off the event loop, and the log starts over."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from canopy.store.db import Database
from canopy.store.wal_checkpoints import BACKSTOP, EVERY, Checkpoint, Checkpointer
from canopy.store.write_lock import WriteLock

ROW = "x" * 2000  # a page of log or so per row


async def _writes(db: Database, n: int, rows: int = 4) -> None:
    for _ in range(n):
        async with db.session() as s:
            await s.execute(text("INSERT INTO t (v) VALUES (:v)"), [{"v": ROW}] * rows)


def _held_checkpoints(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, threading.Event]:
    """Checkpoints that, in their thread, say they started (the first event) and wait for
    the second before they run."""
    entered, release = threading.Event(), threading.Event()
    real = Checkpointer._checkpoint

    def held(self: Checkpointer) -> Checkpoint:
        entered.set()
        release.wait(10)
        return real(self)

    monkeypatch.setattr(Checkpointer, "_checkpoint", held)
    return entered, release


async def _database(tmp_path: Path) -> Database:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/a.db")
    async with db.session() as s:
        await s.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
    return db


async def test_checkpoints_run_in_a_thread_and_the_log_starts_over(tmp_path: Path) -> None:
    db = await _database(tmp_path)
    cp = db.checkpoints
    assert cp is not None
    seen: list[Checkpoint] = []
    try:
        # One write after another, the loop given back between them (as requests and
        # controllers do): checkpoints run in their thread meanwhile. A write waits for
        # the running checkpoint, so none is left behind in the log, and the write after
        # it starts the log over.
        for _ in range(8 * EVERY):
            await _writes(db, 1)
            await asyncio.sleep(0.0005)
            if cp.last is not None and (not seen or cp.last is not seen[-1]):
                seen.append(cp.last)
        await cp.idle()
        assert len(seen) >= 5
        assert all(c.thread != threading.get_ident() for c in seen)  # not the loop's
        assert all(not c.busy and c.copied == c.log_pages > 0 for c in seen)
        # The log holds about one round of writes, not all of them since the first (it
        # grew round after round when writes went on during a checkpoint).
        assert max(c.log_pages for c in seen) <= 2 * min(c.log_pages for c in seen)
        async with db.read() as s:
            assert (await s.execute(text("SELECT count(*) FROM t"))).scalar_one() == 8 * EVERY * 4
    finally:
        await db.dispose()
    assert not (tmp_path / "a.db-wal").exists()  # the last close checkpointed it all


async def test_the_loops_connections_checkpoint_only_past_the_backstop(tmp_path: Path) -> None:
    db = await _database(tmp_path)
    try:
        async with db.session() as s:
            pages = (await s.execute(text("PRAGMA wal_autocheckpoint"))).scalar_one()
        assert pages == BACKSTOP
    finally:
        await db.dispose()


async def test_writes_wait_for_a_running_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = await _database(tmp_path)
    entered, release = _held_checkpoints(monkeypatch)
    try:
        await _writes(db, EVERY - 1)  # the table's creation was the first
        assert db.checkpoints is not None
        await asyncio.to_thread(entered.wait, 10)
        write = asyncio.create_task(_writes(db, 1))
        ticks = 0
        for _ in range(50):  # the loop goes on meanwhile; the write does not
            await asyncio.sleep(0)
            ticks += 1
        assert ticks == 50 and not write.done()
        release.set()
        await asyncio.wait_for(write, 10)
        await db.checkpoints.idle()
        assert db.checkpoints.last is not None and not db.checkpoints.last.busy
    finally:
        release.set()
        await db.dispose()


async def test_a_failed_checkpoint_is_logged_and_the_next_one_runs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = await _database(tmp_path)
    cp = db.checkpoints
    assert cp is not None
    real = Checkpointer._checkpoint
    calls = 0

    def failing_once(self: Checkpointer) -> Checkpoint:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise sqlite3.OperationalError("disk I/O error")
        return real(self)

    monkeypatch.setattr(Checkpointer, "_checkpoint", failing_once)
    try:
        await _writes(db, EVERY - 1)
        await cp.idle()
        assert cp.last is None  # the first failed: nothing to report
        await _writes(db, EVERY)
        await cp.idle()
        assert calls == 2 and cp.last is not None and cp.last.copied == cp.last.log_pages
        assert "checkpoint of" in caplog.text and "disk I/O error" in caplog.text
    finally:
        await db.dispose()


async def test_an_in_memory_database_has_no_checkpointer() -> None:
    db = Database("sqlite+aiosqlite:///:memory:")
    try:
        assert db.checkpoints is None
        async with db.session() as s:  # SQLite's own automatic checkpoint, unchanged
            assert (await s.execute(text("PRAGMA wal_autocheckpoint"))).scalar_one() == 1000
    finally:
        await db.dispose()


async def test_a_writer_in_another_process_makes_it_busy_not_stuck(tmp_path: Path) -> None:
    db = await _database(tmp_path)
    other = sqlite3.connect(tmp_path / "a.db", isolation_level=None, timeout=0)
    try:
        await _writes(db, 3)
        other.execute("BEGIN IMMEDIATE")  # another process's write, under way
        other.execute("INSERT INTO t (v) VALUES ('other')")
        cp = Checkpointer(str(tmp_path / "a.db"), None, every=1)
        cp.wrote()
        await cp.idle()
        # It did not wait for the writer; what was committed is copied all the same.
        assert cp.last is not None and cp.last.busy
        assert cp.last.copied == cp.last.log_pages > 0
        other.execute("COMMIT")
        cp.wrote()
        await cp.idle()
        assert cp.last is not None and not cp.last.busy
        await cp.close()
    finally:
        other.close()
        await db.dispose()


async def test_closing_cancels_a_checkpoint_still_waiting_for_the_lock(tmp_path: Path) -> None:
    db = await _database(tmp_path)
    lock = WriteLock()
    await lock.acquire()  # a write transaction under way
    cp = Checkpointer(str(tmp_path / "a.db"), lock, every=1)
    try:
        cp.wrote()
        await asyncio.sleep(0)
        assert lock.waiting() == 1
        await asyncio.wait_for(cp.close(), 10)  # does not wait for the lock's holder
        assert lock.waiting() == 0 and cp.last is None
        lock.release()
        assert not lock.locked()
        cp.wrote()  # after a close, a write starts afresh
        await cp.idle()
        assert cp.last is not None and cp.last.copied == cp.last.log_pages
        await cp.close()
    finally:
        await db.dispose()


async def test_closing_waits_for_a_running_checkpoint_then_closes_its_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = await _database(tmp_path)
    entered, release = _held_checkpoints(monkeypatch)
    lock = WriteLock()
    cp = Checkpointer(str(tmp_path / "a.db"), lock, every=1)
    try:
        await _writes(db, 2)
        cp.wrote()
        await asyncio.to_thread(entered.wait, 10)
        closing = asyncio.create_task(cp.close())
        for _ in range(50):
            await asyncio.sleep(0)
        assert not closing.done() and lock.locked()  # not cancelled under the thread
        release.set()
        await asyncio.wait_for(closing, 10)
        assert cp.last is not None and cp.last.copied == cp.last.log_pages > 0
        assert not lock.locked()
    finally:
        release.set()
        await db.dispose()
    assert not (tmp_path / "a.db-wal").exists()  # both connections closed
