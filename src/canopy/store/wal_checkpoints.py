"""SQLite's WAL checkpoints, run in a thread of their own instead of inside a commit.

In WAL mode SQLite copies the log back into the database file (a checkpoint) when a commit
finds the log past `wal_autocheckpoint` pages (1,000 by default): that commit does the
copy and syncs the file, about 4 ms of CPU and 10 ms of wall on a 2-core machine. Canopy's
statements run on the event loop's thread (store/sqlite_inline.py), so the loop waited
for it: one write transaction in thirty held the loop that long, and those were the
longest holds of a sync pass (bench/sync_holds.py).

Here the loop's connections leave checkpoints to this process's `Checkpointer`, which runs
a PASSIVE one on a connection of its own in a worker thread once every `EVERY` write
transactions. The sqlite3 module lets go of the GIL while SQLite works, so the copy and
its sync overlap the loop instead of stopping it: requests and reads go on meanwhile.

The checkpoint holds this process's write lock (store/write_lock.py, in the controllers'
queue) while it runs, so that this process's writes wait for it, as they waited for a
commit's checkpoint before. That is what lets the log start over: SQLite reuses the log
from its start only when a write begins with every frame of it copied, and writes that
went on during a checkpoint in the background left frames behind each time, so the log
never started over and grew to hundreds of MB until the backstop below copied it inline.

PASSIVE never waits for a reader or for another process's writer: it copies what no
reader still needs and leaves the rest for the next one, as SQLite's own automatic
checkpoint does. Several processes on one file each run theirs; one that finds another
checkpointing is told so by SQLite and does nothing.

The loop's connections keep an automatic checkpoint at `BACKSTOP` pages (40 MB of log):
if nothing checkpoints (a reader holding one snapshot for minutes, or a process that
writes without a checkpointer), the log still cannot grow without bound.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from dataclasses import dataclass

from canopy.store.write_lock import WriteLock

log = logging.getLogger(__name__)

EVERY = 16  # write transactions between two checkpoints
BACKSTOP = 10_000  # pages of log past which a commit checkpoints on the loop after all


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What one checkpoint did, as SQLite reports it."""

    busy: bool  # another connection was checkpointing: nothing done
    log_pages: int  # pages in the log
    copied: int  # pages of it now in the database file
    thread: int  # the thread it ran on


class Checkpointer:
    """Runs PASSIVE checkpoints of the SQLite file at `path` off the event loop."""

    def __init__(self, path: str, lock: WriteLock | None, every: int = EVERY) -> None:
        self._path = path
        self._lock = lock
        self._every = every
        self._writes = 0
        self._conn: sqlite3.Connection | None = None
        self._running: asyncio.Task[None] | None = None
        self._closed = False
        self.last: Checkpoint | None = None  # the latest checkpoint's report

    def wrote(self) -> None:
        """A write transaction committed: every `every` of them, start a checkpoint (in the
        background, one at a time)."""
        self._writes += 1
        if self._writes < self._every or self._closed:
            return
        if self._running is not None and not self._running.done():
            return  # still at the last one: the next write asks again
        self._writes = 0
        self._running = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        if self._lock is not None:
            await self._lock.acquire()  # this process's writes wait: see the module doc
        try:
            self.last = await asyncio.to_thread(self._checkpoint)
        except sqlite3.Error as e:  # a checkpoint is an optimisation: the next one retries
            log.warning("SQLite checkpoint of %s failed: %s", self._path, e)
        finally:
            if self._lock is not None:
                self._lock.release()

    def _checkpoint(self) -> Checkpoint:
        """In the worker thread: the connection is used by one checkpoint at a time."""
        if self._conn is None:
            self._conn = sqlite3.connect(
                self._path, timeout=0, isolation_level=None, check_same_thread=False
            )
        busy, pages, copied = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return Checkpoint(bool(busy), pages, copied, threading.get_ident())

    async def idle(self) -> None:
        """Wait for the running checkpoint, if any, to end."""
        if self._running is not None:
            await asyncio.gather(self._running, return_exceptions=True)

    async def close(self) -> None:
        """Wait for a running checkpoint, then close the connection (in a thread: if it is
        the file's last, SQLite checkpoints once more as it closes)."""
        self._closed = True
        await self.idle()
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await asyncio.to_thread(conn.close)
