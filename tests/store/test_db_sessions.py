"""`Database.session`/`read`/`ping`: closed when the block ends, on SQLite without waiting
for turns of the loop, on every path (commit, error, cancellation)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import text

from canopy.store.db import Database
from canopy.store.loop_share import SHARE


async def _turns_during(work: Callable[[], Awaitable[Any]]) -> int:
    """How many turns of the loop pass while `work` runs: a callback that schedules
    itself again counts each turn."""
    loop = asyncio.get_running_loop()
    turns, running = 0, True

    def tick() -> None:
        nonlocal turns
        if running:
            turns += 1
            loop.call_soon(tick)

    loop.call_soon(tick)
    try:
        await work()
    finally:
        running = False
    return turns


def _checked_out(db: Database) -> int:
    return int(db.engine.pool.checkedout())  # type: ignore[attr-defined]


async def _read(db: Database) -> None:
    async with db.read() as s:
        assert (await s.execute(text("SELECT 1"))).scalar_one() == 1


async def _write(db: Database) -> None:
    async with db.session() as s:
        assert (await s.execute(text("SELECT 1"))).scalar_one() == 1


@pytest.mark.parametrize("block", ["read", "session", "ping"])
async def test_on_sqlite_a_block_ends_without_giving_the_loop_away(
    tmp_path: Any, block: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLAlchemy's `async with session` closes in a shielded task of its own: three turns
    of the loop, behind whatever is ready then. On SQLite the close does not suspend, so a
    block of one statement takes no turn at all (the loop's share, which pauses a step
    past its budget, is set out of the way: this is about the close)."""
    monkeypatch.setattr(SHARE, "budget", 3600.0)
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'c.db'}")
    try:
        work = {"read": lambda: _read(db), "session": lambda: _write(db), "ping": db.ping}[block]
        await work()  # the connection made, the statement compiled
        await asyncio.sleep(0)
        assert await _turns_during(work) == 0
        assert _checked_out(db) == 0
    finally:
        await db.dispose()


async def test_sessions_are_closed_and_their_connections_back_in_the_pool(db: Database) -> None:
    await _read(db)
    await _write(db)
    await db.ping()
    assert _checked_out(db) == 0
    async with db.session() as s:
        await s.execute(text("CREATE TABLE t_sessions (v TEXT)"))
    with pytest.raises(RuntimeError, match="boom"):
        async with db.session() as s:
            await s.execute(text("INSERT INTO t_sessions VALUES ('rolled back')"))
            raise RuntimeError("boom")
    assert _checked_out(db) == 0
    async with db.read() as s:
        assert (await s.execute(text("SELECT count(*) FROM t_sessions"))).scalar_one() == 0


async def test_a_write_cancelled_in_its_block_is_rolled_back_and_lets_the_next_write_in(
    db: Database,
) -> None:
    async with db.session() as s:
        await s.execute(text("CREATE TABLE t_cancel (v TEXT)"))
    inside = asyncio.Event()

    async def writer() -> None:
        async with db.session() as s:
            await s.execute(text("INSERT INTO t_cancel VALUES ('cancelled')"))
            inside.set()
            await asyncio.Event().wait()  # until cancelled

    task = asyncio.create_task(writer())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _checked_out(db) == 0
    async with asyncio.timeout(5):  # the write lock was released
        async with db.session() as s:
            await s.execute(text("INSERT INTO t_cancel VALUES ('next')"))
    async with db.read() as s:
        rows = (await s.execute(text("SELECT v FROM t_cancel"))).scalars().all()
    assert rows == ["next"]
