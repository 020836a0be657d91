"""SQLite's one writer, inside one process: a lock with two queues.

Write transactions queue here instead of spinning in SQLite's busy handler. A request's
write (the API admitting new work: a create, a delete) waits behind the writes of work
already admitted (a controller placing, leasing or recording servers): under a burst of 50
creates, a plain FIFO put placement behind every create still queueing, so the first
server accepted waited for the last one to be written before it was placed. Work in
progress goes first; new work is still admitted between its transactions, since a
controller asks again only after its pass. Within each queue the order is first come,
first served, and the lock is handed over on release, so nobody barges past a waiter.
"""

from __future__ import annotations

import asyncio
from collections import deque


class WriteLock:
    """A lock whose waiters in `first` go before those in `later` (see module doc)."""

    def __init__(self) -> None:
        self._held = False
        self._first: deque[asyncio.Future[None]] = deque()
        self._later: deque[asyncio.Future[None]] = deque()

    def locked(self) -> bool:
        return self._held

    def waiting(self) -> int:
        return len(self._first) + len(self._later)

    async def acquire(self, *, admission: bool = False) -> None:
        if not self._held and not self._first and not self._later:
            self._held = True
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._later if admission else self._first
        queue.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # handed over just as we were cancelled: pass it on
            else:
                queue.remove(fut)
            raise

    def release(self) -> None:
        """Hand the lock to the next waiter (work in progress first), else free it."""
        assert self._held, "release of a write lock that is not held"
        for queue in (self._first, self._later):
            while queue:
                fut = queue.popleft()
                if not fut.done():
                    fut.set_result(None)  # stays held: it is the waiter's now
                    return
        self._held = False
