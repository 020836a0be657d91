"""SQLite on the event loop: no thread per connection, and a locked file never blocks the loop."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from canopy.store.db import Database
from canopy.store.sqlite_inline import InlineConnection, inline_creator

# Another process takes the file's write lock, says so, holds it, then commits.
HOLDER = """
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("PRAGMA journal_mode=WAL")
c.execute("BEGIN IMMEDIATE")
c.execute("INSERT INTO t VALUES ('holder')")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
c.execute("COMMIT")
"""


def _table(path: Path) -> None:
    c = sqlite3.connect(path, isolation_level=None)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("CREATE TABLE t (v TEXT)")
    c.close()


async def _ticks_while(coro_done: asyncio.Future[object]) -> int:
    """How many times the loop ran other work while `coro_done` was pending."""
    n = 0
    while not coro_done.done():
        await asyncio.sleep(0.005)
        n += 1
    return n


async def test_statements_run_on_the_loops_thread(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/a.db")
    try:
        before = threading.active_count()
        async with db.session() as s:
            await s.execute(text("CREATE TABLE t (v TEXT)"))
            await s.execute(text("INSERT INTO t VALUES ('x')"))
        async with db.read() as s:
            assert (await s.execute(text("SELECT v FROM t"))).scalar_one() == "x"
        assert threading.active_count() == before  # aiosqlite would have started one
        raw = await db.engine.raw_connection()
        try:
            assert isinstance(raw.driver_connection, InlineConnection)
        finally:
            raw.close()
    finally:
        await db.dispose()


async def test_a_write_waits_for_another_process_without_blocking_the_loop(
    tmp_path: Path,
) -> None:
    path = tmp_path / "b.db"
    _table(path)
    db = Database(f"sqlite+aiosqlite:///{path}")
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLDER, str(path), "0.4", stdout=asyncio.subprocess.PIPE
    )
    try:
        assert holder.stdout is not None
        assert (await holder.stdout.readline()).strip() == b"locked"

        async def write() -> None:
            async with db.session() as s:
                await s.execute(text("INSERT INTO t VALUES ('canopy')"))

        started = time.monotonic()
        task = asyncio.ensure_future(write())
        ticks = await _ticks_while(task)
        await task
        waited = time.monotonic() - started
        # It waited for the other process's commit, and the loop ran meanwhile.
        assert waited >= 0.2
        assert ticks >= 10
        async with db.read() as s:
            rows = (await s.execute(text("SELECT v FROM t ORDER BY rowid"))).scalars().all()
        assert rows == ["holder", "canopy"]  # the holder's commit first, then ours
    finally:
        await asyncio.wait_for(holder.wait(), timeout=10)
        await db.dispose()


async def test_a_lock_held_past_the_deadline_fails_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    _table(path)
    conn = await inline_creator(str(path), busy_seconds=0.1)()
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await conn.execute("BEGIN IMMEDIATE")
        assert 0.1 <= time.monotonic() - started < 2.0
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    # Once the lock is free the same connection writes normally.
    await conn.execute("BEGIN IMMEDIATE")
    await conn.execute("INSERT INTO t VALUES ('after')")
    await conn.commit()
    cur = await conn.execute("SELECT v FROM t")
    assert await cur.fetchall() == [("after",)]
    await conn.close()


async def test_other_errors_are_raised_at_once(tmp_path: Path) -> None:
    conn = await inline_creator(str(tmp_path / "d.db"))()
    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        await conn.execute("SELECT * FROM missing")
    assert time.monotonic() - started < 5.0  # not retried for the 30 s busy_seconds
    await conn.close()
    with pytest.raises(ValueError, match="no active connection"):
        await conn.execute("SELECT 1")
