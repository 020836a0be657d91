"""SQLite's one writer, inside one process: a lock with two queues.

Write transactions queue here instead of spinning in SQLite's busy handler. A request's
write (the API admitting new work: a create, a delete) and a controller's (placing,
leasing or recording work already admitted) used to share one FIFO queue: under a burst of
50 creates, placement waited behind every create still queueing, so the first server
accepted was placed after the last one was written. Now they queue apart, and the
controllers' writes go in turns: each turn serves every controller write waiting when it
began, and at most ADMISSIONS request writes go between turns. Work in progress is not held
up by new work, and new work is still admitted between the turns (a controller that keeps
writing cannot starve the API). Within each queue the order is first come, first served,
and the lock is handed over on release, so nobody barges past a waiter.
"""

from __future__ import annotations

import asyncio
from collections import deque

ADMISSIONS = 1  # request writes between two turns of the controllers, at most


class WriteLock:
    """A lock with two queues: controllers' writes and requests' (see module doc)."""

    def __init__(self) -> None:
        self._held = False
        self._admitted = ADMISSIONS  # request writes since the controllers' last turn
        self._turn = 0  # controllers' writes still to go in the current turn
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
            elif fut in queue:  # a release since the cancel may have dropped it already
                if queue is self._first and queue.index(fut) < self._turn:
                    self._turn -= 1  # it was one of the current turn's: the turn is shorter
                queue.remove(fut)
            raise

    def release(self) -> None:
        """Hand the lock to the next waiter, else free it.

        Controllers' writes go in turns: a turn serves the controllers waiting when it
        began, then at most ADMISSIONS request writes go before the next turn (at once if
        no request waits)."""
        assert self._held, "release of a write lock that is not held"
        while self._turn > 0 and self._first:
            fut = self._first.popleft()
            self._turn -= 1  # a waiter of this turn, live or cancelled: its place is spent
            if not fut.done():
                fut.set_result(None)
                return
        self._turn = 0
        if (self._admitted < ADMISSIONS or not self._first) and self._hand(self._later):
            self._admitted += 1
            return
        if self._hand(self._first):
            self._turn = len(self._first)  # the rest of those waiting now share this turn
            self._admitted = 0
            return
        self._held = False

    @staticmethod
    def _hand(queue: deque[asyncio.Future[None]]) -> bool:
        """Give the lock (still held: it is the waiter's now) to the queue's first live
        waiter; False if none."""
        while queue:
            fut = queue.popleft()
            if not fut.done():
                fut.set_result(None)
                return True
        return False
