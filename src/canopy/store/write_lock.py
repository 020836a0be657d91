"""SQLite's one writer, inside one process: a lock with two queues.

Write transactions queue here instead of spinning in SQLite's busy handler. A request's
write (the API admitting new work: a create, a delete) and a controller's (placing,
leasing or recording work already admitted) used to share one FIFO queue: under a burst of
50 creates, placement waited behind every create still queueing, so the first server
accepted was placed after the last one was written. Now they queue apart, and a waiting
controller goes after at most ADMISSIONS request writes: work in progress is not held up
by new work for long, and new work is still admitted between controller transactions.
The ADMISSIONS writes let a burst's creates gather, so placement takes a few servers per
pass instead of one (each pass pays for its snapshot of the clouds). Within each queue the
order is first come, first served, and the lock is handed over on release, so nobody
barges past a waiter.
"""

from __future__ import annotations

import asyncio
from collections import deque

ADMISSIONS = 4  # request writes let through, at most, while a controller's write waits


class WriteLock:
    """A lock with two queues: controllers' writes and requests' (see module doc)."""

    def __init__(self) -> None:
        self._held = False
        self._admitted = ADMISSIONS  # request writes since a controller's last turn
        self._first: deque[asyncio.Future[None]] = deque()
        self._later: deque[asyncio.Future[None]] = deque()

    def locked(self) -> bool:
        return self._held

    def waiting(self) -> int:
        return len(self._first) + len(self._later)

    async def acquire(self, *, admission: bool = False) -> None:
        if not self._held and not self._first and not self._later:
            self._held = True
            self._admitted = self._admitted + 1 if admission else 0
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
        """Hand the lock to the next waiter, else free it: a controller's write once
        ADMISSIONS request writes have gone since its queue's last turn (or none waits)."""
        assert self._held, "release of a write lock that is not held"
        first = not self._later or self._admitted >= ADMISSIONS
        for queue in (self._first, self._later) if first else (self._later, self._first):
            while queue:
                fut = queue.popleft()
                if not fut.done():
                    fut.set_result(None)  # stays held: it is the waiter's now
                    self._admitted = 0 if queue is self._first else self._admitted + 1
                    return
        self._held = False
