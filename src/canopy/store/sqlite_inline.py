"""SQLite for SQLAlchemy's asyncio engine, run on the event loop instead of in a thread.

aiosqlite runs every call (cursor, execute, fetch, close, commit) in a thread of its own and
hands the result back through the event loop: about 130 us of CPU per call on this kind of
machine, against a few us for the SQLite call itself. A transaction makes ten or more such
calls, so the hand-offs cost more than the SQL. `InlineConnection` is aiosqlite's
`Connection` with that one step changed: each call runs at once, on the loop's thread.
SQLAlchemy's aiosqlite dialect drives it unchanged (it is passed as `async_creator`).

What makes that safe here:

- SQLite calls are short: the database is a local file in WAL mode with
  `synchronous = NORMAL`, so a commit appends to the WAL without waiting for the disk.
- The one long wait SQLite has, for another connection's write lock, never blocks the loop.
  The connection's busy timeout is 0, so a locked database fails at once with SQLITE_BUSY,
  and the call is retried after an asyncio sleep (with backoff, for up to `busy_seconds`).
  In WAL mode a reader never waits for a writer, and writes start with BEGIN IMMEDIATE,
  so SQLITE_BUSY comes from BEGIN IMMEDIATE (or a COMMIT) and means that the statement did
  nothing: retrying it is what SQLite's documentation prescribes. Inside one process,
  writers already queue on an asyncio lock (`Database.session`); this wait is for writers
  in other processes (`canopy api` and `canopy worker` on one file).

A call never waits on the loop, so a step of many statements would hold it from the first
to the last: before a call, a step that has held the loop past a couple of milliseconds
lets the ready callbacks run first, unless it holds the write lock and another write waits
for it (store/loop_share.py).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Generator
from functools import partial
from pathlib import Path
from typing import Any

import aiosqlite

from canopy.store.loop_share import SHARE, may_pause

# Calls that end a transaction's work or a cursor, and run when a session is put back (the
# pool's reset) or torn down: no pause before them, so a cancellation cannot land between a
# COMMIT and the pool's reset, where the caller would see a committed transaction fail.
_NO_PAUSE = frozenset({"rollback", "close"})


class _Inline:
    """Stands in for aiosqlite's queue to its thread: runs each queued function at once.

    SQLAlchemy's dialect queues one function itself (its isolation-level setter), and
    aiosqlite's `stop()` queues the close; both run here, on the caller's thread.
    """

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, fn = item
        try:
            result = fn()
        except BaseException as e:  # handed to whoever awaits the future, as aiosqlite does
            if future is not None and not future.done():
                future.set_exception(e)
            return
        if future is not None and not future.done():
            future.set_result(result)


def _busy(e: sqlite3.OperationalError) -> bool:
    code = getattr(e, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(e) or "busy" in str(e)


class InlineConnection(aiosqlite.Connection):
    """aiosqlite's connection, with each call run at once on the event loop's thread."""

    def __init__(self, connector: Callable[[], sqlite3.Connection], busy_seconds: float) -> None:
        super().__init__(connector, iter_chunk_size=64)
        self._tx = _Inline()  # type: ignore[assignment]
        self._busy_seconds = busy_seconds

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if SHARE.due() and getattr(fn, "__name__", "") not in _NO_PAUSE and may_pause():
            await asyncio.sleep(0)  # the step has held the loop long enough: others first
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        call = partial(fn, *args, **kwargs)
        deadline = time.monotonic() + self._busy_seconds
        delay = 0.001
        while True:
            try:
                return call()
            except sqlite3.OperationalError as e:
                if not _busy(e) or time.monotonic() >= deadline:
                    raise
            await asyncio.sleep(delay)  # another process holds the write lock
            delay = min(delay * 2, 0.05)

    async def _connect(self) -> InlineConnection:
        if self._connection is None:
            self._connection = self._connector()
        return self

    def __await__(self) -> Generator[Any, None, InlineConnection]:
        return self._connect().__await__()  # no thread to start


def inline_creator(path: str, *, busy_seconds: float = 30.0) -> Callable[[], Any]:
    """An `async_creator` for `create_async_engine("sqlite+aiosqlite://...")`."""

    def connector() -> sqlite3.Connection:
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # timeout=0: a locked database raises at once; `_execute` waits without blocking.
        return sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False)

    async def create() -> InlineConnection:
        return await InlineConnection(connector, busy_seconds)

    return create
