"""`Database.session`/`read`/`ping`: closed when the block ends without waiting for turns
of the loop (a session once its transaction has ended, on either database; `ping`'s bare
connection on SQLite), and on every path (commit, error, cancellation, a failing hook)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, inspect, select, text

from canopy.store.db import Database
from canopy.store.loop_share import SHARE
from canopy.store.models import Project
from tests.loop_turns import LoopTurns


async def _turns_during(work: Callable[[], Awaitable[Any]]) -> int:
    """How many turns of the loop pass while `work` runs."""
    async with LoopTurns() as turns:
        start = turns.n
        await work()
        return turns.n - start


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


def _project(pid: str) -> Project:
    return Project(id=pid, name=pid, created_at=datetime(2026, 1, 1, tzinfo=UTC))


async def test_sessions_are_closed_and_their_connections_back_in_the_pool(db: Database) -> None:
    """Closed: the session lets go of its objects (a block that only committed would
    leave them attached), for a write and for a read; an error rolls the write back."""
    await _read(db)
    await _write(db)
    await db.ping()
    assert _checked_out(db) == 0
    async with db.session() as s:
        kept = _project("p-kept")
        s.add(kept)
    assert inspect(kept).detached
    with pytest.raises(RuntimeError, match="boom"):
        async with db.session() as s:
            gone = _project("p-rolled-back")
            s.add(gone)
            await s.flush()
            raise RuntimeError("boom")
    assert inspect(gone).transient  # rolled back: never stored
    assert _checked_out(db) == 0
    async with db.read() as s:
        read = await s.get(Project, "p-kept")
        assert read is not None
        assert await s.get(Project, "p-rolled-back") is None
    assert inspect(read).detached
    assert _checked_out(db) == 0


async def test_a_write_cancelled_in_its_block_is_rolled_back_and_lets_the_next_write_in(
    db: Database,
) -> None:
    inside = asyncio.Event()

    async def writer() -> None:
        async with db.session() as s:
            s.add(_project("p-cancelled"))
            await s.flush()
            inside.set()
            await asyncio.Event().wait()  # until cancelled

    task = asyncio.create_task(writer())
    async with asyncio.timeout(5):
        await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _checked_out(db) == 0
    async with asyncio.timeout(5):  # the write lock was released
        async with db.session() as s:
            s.add(_project("p-next"))
    async with db.read() as s:
        ids = (await s.execute(select(Project.id).order_by(Project.id))).scalars().all()
    assert ids == ["p-next"]


async def test_a_session_whose_transaction_ended_is_closed_without_a_turn(db: Database) -> None:
    """On either database, once the transaction has ended the close is in memory: leaving
    the block after the commit takes no turn of the loop (SQLAlchemy's own close: 3)."""
    closing = db._closing(db._sessions)
    s = await closing.__aenter__()
    s.add(_project("p-ended"))
    await s.commit()
    assert not s.in_transaction()
    assert await _turns_during(lambda: closing.__aexit__(None, None, None)) == 0
    assert _checked_out(db) == 0


async def test_a_session_whose_exit_broke_off_is_closed_the_shielded_way(db: Database) -> None:
    """An `after_commit` hook that fails leaves the session in its transaction after the
    commit: the close then has work to do, and is SQLAlchemy's (shielded); the connection
    goes back and the next write gets the lock."""

    def fail(_session: object) -> None:
        raise RuntimeError("hook failed")

    with pytest.raises(RuntimeError, match="hook failed"):
        async with db.session() as s:
            event.listen(s.sync_session, "after_commit", fail)
            s.add(_project("p-hooked"))
    assert _checked_out(db) == 0
    async with asyncio.timeout(5):
        async with db.session() as s:
            s.add(_project("p-after"))
    async with db.read() as s:
        ids = (await s.execute(select(Project.id).order_by(Project.id))).scalars().all()
    assert ids == ["p-after", "p-hooked"]  # the hook failed after the commit
