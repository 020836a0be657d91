"""A step of many SQLite statements gives the loop back every couple of milliseconds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from canopy.store import sqlite_inline
from canopy.store.db import Database
from canopy.store.loop_share import HOLDING, LoopShare, may_pause
from canopy.store.sqlite_inline import inline_creator


class FakeTime:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


async def test_due_only_once_the_step_has_held_the_loop_past_the_budget() -> None:
    now = FakeTime()
    share = LoopShare(0.002, now)
    assert not share.due()  # the first check of a step starts counting
    now.t += 0.0015
    assert not share.due()  # within the budget, still the same step
    now.t += 0.001
    assert share.due()  # 2.5 ms without the loop turning
    assert share.due()  # and stays so until it turns
    await asyncio.sleep(0)  # the loop turns
    assert not share.due()  # a new count, from now
    now.t += 0.0025
    assert share.due()


async def test_a_turn_of_the_loop_between_checks_starts_a_new_count() -> None:
    now = FakeTime()
    share = LoopShare(0.002, now)
    assert not share.due()
    await asyncio.sleep(0)
    now.t += 10.0  # a long wait on the loop (the step gave it back): not a hold
    assert not share.due()


def test_each_loop_counts_on_its_own() -> None:
    now = FakeTime()
    share = LoopShare(0.002, now)

    async def check() -> bool:
        return share.due()

    assert asyncio.run(check()) is False
    now.t += 1.0
    # A new loop: what was armed on the last one (which never turned again) does not count.
    assert asyncio.run(check()) is False


def test_never_due_outside_a_running_loop() -> None:
    # A connection finalized by the garbage collector, with no loop running.
    now = FakeTime()
    share = LoopShare(0.0, now)
    assert not share.due()
    now.t += 1.0
    assert not share.due()


class _AlwaysDue:
    def due(self) -> bool:
        return True


async def test_no_pause_before_a_rollback_or_a_close(tmp_path: Path, monkeypatch: Any) -> None:
    """What a session runs when it is put back (the pool's reset rollback, a cursor's
    close) never pauses, so a cancellation cannot land after a COMMIT and before them."""
    monkeypatch.setattr(sqlite_inline, "SHARE", _AlwaysDue())
    conn = await inline_creator(str(tmp_path / "c.db"))()
    turns = 0

    async def ticker() -> None:
        nonlocal turns
        while True:
            await asyncio.sleep(0)
            turns += 1

    tick = asyncio.create_task(ticker())
    try:
        await asyncio.sleep(0)
        before = turns
        cursor = await conn.execute("SELECT 1")  # a statement: it pauses first
        assert turns > before
        before = turns
        await cursor.close()
        await conn.rollback()
        assert turns == before
    finally:
        tick.cancel()
        await conn.close()


async def _ticker(done: asyncio.Event, gaps: list[float]) -> None:
    """Until `done`: yield, and note how long each turn of the loop took to come back."""
    last = time.perf_counter()
    while not done.is_set():
        await asyncio.sleep(0)
        now = time.perf_counter()
        gaps.append(now - last)
        last = now


@pytest.fixture
async def slow_db(tmp_path: Path) -> AsyncIterator[Database]:
    """A SQLite database with a table `t` whose connections have `spin()` (1 ms)."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/a.db")
    _slow_statements(db, 1.0)
    try:
        async with db.session() as s:
            await s.execute(text("CREATE TABLE t (v INTEGER)"))
        yield db
    finally:
        await db.dispose()


def _slow_statements(db: Database, ms: float) -> None:
    """Every connection gets `spin()`: a SQL function that holds its caller `ms`."""

    @event.listens_for(db.engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        def spin() -> int:
            end = time.perf_counter() + ms / 1000
            while time.perf_counter() < end:
                pass
            return 1

        dbapi_conn.create_function("spin", 0, spin)


async def test_a_long_transaction_lets_other_tasks_run_and_stays_one_transaction(
    slow_db: Database,
) -> None:
    db = slow_db
    done = asyncio.Event()
    gaps: list[float] = []  # the loop's turns, as a task that only yields sees them
    seen: list[int] = []  # rows a reader saw, at each of its reads during the write

    async def reader() -> None:
        while not done.is_set():
            async with db.read() as r:
                seen.append((await r.execute(text("SELECT count(*) FROM t"))).scalar_one())
            await asyncio.sleep(0)

    async def write() -> float:
        t0 = time.perf_counter()
        try:
            async with db.session() as s:
                for i in range(40):  # 40 ms of statements or more, in one transaction
                    await s.execute(text("INSERT INTO t SELECT :i WHERE spin()"), {"i": i})
        finally:
            done.set()
        return time.perf_counter() - t0

    _, _, took = await asyncio.gather(_ticker(done, gaps), reader(), write())  # the write last
    assert took >= 0.040
    # Without the budget the write was one step of the loop: the ticker's longest wait
    # was all of it. With it, the loop turned every budget and a statement or so (a
    # loaded machine stretches both; half the write is a bound it meets)...
    assert max(gaps) < took / 2, (max(gaps), took)
    # ...the reader read several times meanwhile, and never saw a row of the open
    # transaction.
    assert len(seen) >= 3 and set(seen[:-1]) == {0}, seen
    async with db.read() as r:
        assert (await r.execute(text("SELECT count(*) FROM t"))).scalar_one() == 40


class _Waiting:
    def __init__(self, n: int) -> None:
        self.n = n

    def waiting(self) -> int:
        return self.n


def test_no_pause_while_holding_the_write_lock_with_a_write_waiting() -> None:
    assert may_pause()  # no write lock held
    for waiting, expected in ((0, True), (1, False)):
        token = HOLDING.set(_Waiting(waiting))
        try:
            assert may_pause() is expected
        finally:
            HOLDING.reset(token)


async def test_a_write_goes_on_without_pausing_while_another_write_waits(
    slow_db: Database,
) -> None:
    """Pausing would only make the waiting write wait longer: the holder goes on."""
    db = slow_db
    order: list[str] = []

    async def first() -> None:
        async with db.session() as s:
            await asyncio.sleep(0.01)  # the second write is waiting by now
            for i in range(20):
                await s.execute(text("INSERT INTO t SELECT :i WHERE spin()"), {"i": i})
                order.append("first")

    async def second() -> None:
        await asyncio.sleep(0.001)
        async with db.session() as s:
            order.append("second")
            await s.execute(text("INSERT INTO t VALUES (-1)"))

    gaps: list[float] = []
    done = asyncio.Event()

    async def writes() -> None:
        try:
            await asyncio.gather(first(), second())
        finally:
            done.set()

    await asyncio.gather(_ticker(done, gaps), writes())
    assert order == ["first"] * 20 + ["second"]
    assert max(gaps) >= 0.015  # the 20 statements ran without a pause
    async with db.read() as r:
        assert (await r.execute(text("SELECT count(*) FROM t"))).scalar_one() == 21
