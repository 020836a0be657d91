"""SQLite's WAL checkpoints, run in a thread of their own instead of inside a commit.

In WAL mode SQLite copies the log back into the database file (a checkpoint) when a commit
finds the log past `wal_autocheckpoint` pages (1,000 by default): that commit does the
copy and syncs the file, about 4 ms of CPU and 10 ms of wall on a 2-core machine. Canopy's
statements run on the event loop's thread (store/sqlite_inline.py), so the loop waited
for it: one write transaction in thirty held the loop that long, and those were the
longest holds of a sync pass (bench/sync_holds.py).

Here the loop's connections leave checkpoints to this process's `Checkpointer`, which runs
one on a connection of its own, in a thread of its own, once every `EVERY` write
transactions. The sqlite3 module lets go of the GIL while SQLite works, so the copy and
its sync overlap the loop instead of stopping it: requests and reads go on meanwhile.

SQLite starts the log over (writes it from its start again) only when a write begins with
every frame of it copied and no reader still reading from it. Writes that went on during
a checkpoint in the background left frames behind each time, so the log never started
over: it grew to 100 MB in one benchmark, until the backstop below copied it inline. So a
checkpoint waits for no one but keeps writers out while it runs:

- it holds this process's write lock (store/write_lock.py, in the controllers' queue):
  this process's writes wait for it, as they waited for a commit that did one;
- it is a RESTART checkpoint with no busy wait: it takes SQLite's write lock too, so other
  processes on the file (`canopy api` beside `canopy worker`) wait for it as well (they
  retry without blocking their loops: store/sqlite_inline.py). If another process is
  writing, or a reader still reads old frames, it copies what it can and says `busy`, as
  a PASSIVE checkpoint would, and a later round starts the log over.

The loop's connections keep an automatic checkpoint at `BACKSTOP` pages (40 MB of log):
if nothing checkpoints (a reader holding one snapshot for minutes, or a process that
writes without a checkpointer), the log still cannot grow without bound.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from canopy.store.write_lock import WriteLock

log = logging.getLogger(__name__)

EVERY = 16  # write transactions between two checkpoints
BACKSTOP = 10_000  # pages of log past which a commit checkpoints on the loop after all


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What one checkpoint did, as SQLite reports it."""

    busy: bool  # a writer or a reader was in the way: not every frame could be copied
    log_pages: int  # pages in the log
    copied: int  # pages of it now in the database file
    thread: int  # the thread it ran on


class Checkpointer:
    """Runs checkpoints of the SQLite file at `path` off the event loop (module doc)."""

    def __init__(self, path: str, lock: WriteLock | None, every: int = EVERY) -> None:
        self._path = path
        self._lock = lock
        self._every = every
        self._writes = 0
        self._conn: sqlite3.Connection | None = None  # used in `_thread` only
        self._thread: ThreadPoolExecutor | None = None
        self._running: asyncio.Task[None] | None = None
        self._in_thread = False  # the running checkpoint is in the thread (not waiting)
        self._closing = False
        self.last: Checkpoint | None = None  # the latest checkpoint's report

    def wrote(self) -> None:
        """A write transaction committed: every `every` of them, start a checkpoint (in the
        background, one at a time)."""
        self._writes += 1
        if self._writes < self._every or self._closing:
            return
        if self._running is not None and not self._running.done():
            return  # still at the last one: the next write asks again
        self._writes = 0
        self._running = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        if self._lock is not None:
            await self._lock.acquire()  # this process's writes wait: see the module doc
        try:
            if self._thread is None:
                self._thread = ThreadPoolExecutor(1, thread_name_prefix="canopy-checkpoint")
            loop = asyncio.get_running_loop()
            self._in_thread = True  # from here on, `close` waits for it
            self.last = await loop.run_in_executor(self._thread, self._checkpoint)
        except Exception as e:  # a checkpoint is an optimisation: the next one retries
            log.warning("SQLite checkpoint of %s failed: %s: %s", self._path, type(e).__name__, e)
        finally:
            self._in_thread = False
            if self._lock is not None:
                self._lock.release()

    def _checkpoint(self) -> Checkpoint:
        """In the checkpoint thread (the only user of the connection)."""
        if self._conn is None:
            # timeout=0: never wait for another writer or a reader (module doc).
            self._conn = sqlite3.connect(
                self._path, timeout=0, isolation_level=None, check_same_thread=False
            )
        busy, pages, copied = self._conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
        return Checkpoint(bool(busy), pages, copied, threading.get_ident())

    async def idle(self) -> None:
        """Wait for the running checkpoint, if any, to end (not cancelling it)."""
        if self._running is not None and not self._running.done():
            await asyncio.wait({self._running})

    async def close(self) -> None:
        """Stop: a checkpoint still waiting for the lock is cancelled, a running one is
        waited for; the connection is closed in the thread, after whatever it still runs
        (if it is the file's last, SQLite checkpoints once more as it closes). A later
        write starts afresh."""
        self._closing = True
        try:
            running = self._running
            if running is not None and not running.done() and not self._in_thread:
                running.cancel()  # waiting for the lock: WriteLock hands it on
            await self.idle()
            thread, self._thread = self._thread, None
            if thread is not None:
                await asyncio.get_running_loop().run_in_executor(thread, self._close)
                thread.shutdown(wait=False)
        finally:
            self._closing = False

    def _close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()
