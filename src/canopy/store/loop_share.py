"""How long a task may hold the event loop between two SQLite statements.

On SQLite every statement runs on the loop's thread (store/sqlite_inline.py), and an
`await` on one returns without giving the loop back. A controller's pass or a request that
makes twenty statements through the ORM is one step of the loop: placing a batch of one or
two servers held it 10-23 ms, a create request 7-10 ms, a task pass up to 19 ms, all CPU
(bench/loop_steps.py under `bench/loop_stalls.py`'s load), and everything else waited,
`/healthz` and the next page included. On PostgreSQL each statement awaits the server, so
the same code already gives the loop back at every one.

`LoopShare.due()` says whether the running step has held the loop for more than `BUDGET`;
the inline connection then awaits `asyncio.sleep(0)` before its next call, so the ready
callbacks run and the step goes on after them. It knows when the loop last ran its ready
callbacks from a callback of its own (`_seen`), scheduled on the first call of a step: when
that has run, the loop has turned since. A step that makes no statement is not measured.

What it changes is only when, not what: a transaction stays one transaction (its write lock
held across the pause, so this process's other writers wait on `Database.session`'s lock as
before, and readers read the last commit), the order of its statements is the same, and
the code it pauses already runs on PostgreSQL with a pause at every statement.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, Protocol

# A step that has held the loop this long (seconds) lets the ready callbacks run before its
# next statement. A statement itself is tens of microseconds to about a millisecond here.
BUDGET = 0.002


class LoopShare(threading.local):
    """The budget's bookkeeping, per thread: for the event loop running in it. The loop
    and the task counted are held weakly: a task abandoned on a closed loop is still
    collected (and its transaction rolled back)."""

    def __init__(self, budget: float = BUDGET, now: Callable[[], float] = time.perf_counter):
        self.budget = budget
        self._now = now
        self._loop: weakref.ref[asyncio.AbstractEventLoop] | None = None
        self._armed = False  # `_seen` is scheduled and has not run yet
        self._task: weakref.ref[asyncio.Task[Any]] | None = None  # whose step is counted
        self._since = 0.0  # when the loop was last known to have turned

    def due(self) -> bool:
        """Whether the running step has held the loop past the budget (never, outside a
        running loop: a connection finalized by the garbage collector)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        if self._loop is None or self._loop() is not loop:  # a new loop: start afresh
            self._loop, self._armed = weakref.ref(loop), False
        task = asyncio.current_task(loop)
        if not self._armed or self._task is None or self._task() is not task:
            # The loop has turned since the last check, or another task's step is running
            # (the one counted paused or ended): count this step from now, and learn when
            # the loop turns next.
            self._task = None if task is None else weakref.ref(task)
            self._since = self._now()
            if not self._armed:
                self._armed = True
                loop.call_soon(self._seen)
            return False
        return self._now() - self._since > self.budget

    def _seen(self) -> None:
        self._armed = False


SHARE = LoopShare()


class _Lock(Protocol):
    def waiting(self) -> int: ...


# The write lock the running task holds (Database.session sets it on SQLite), if any.
HOLDING: ContextVar[_Lock | None] = ContextVar("canopy_holding_write_lock", default=None)


def may_pause() -> bool:
    """Whether the running task may pause between statements: not while it holds this
    process's write lock and another write waits for it. A pause then would only make that
    write wait longer: 50 clients creating servers got 25% fewer creates through when every
    transaction paused (bench/api_writes.py). Reads, requests and idle moments are what a
    pause is for."""
    lock = HOLDING.get()
    return lock is None or lock.waiting() == 0
