"""Sync's heavy steps take turns: one slice of one pass at a time, in each event loop.

Every cloud's pass runs in its own task (controllers/sync_passes.py), and each gives the
loop back between slices (a read of 100 rows and the rule on each, a chunk of the digest,
a page of rows) with `asyncio.sleep(0)`. That bounds one pass, not the loop: a task that
sleeps 0 is ready again at once, so with 20 clouds' first (deep) passes running, each turn
of the loop ran one slice of every pass, 20 slices of a few ms each, before it looked at a
socket again; a request took several turns, so the API's first page waited 60-300 ms at
start-up (bench/list_latency.py). A turn here is taken before a slice and handed on after
it, in order of asking (asyncio.Lock wakes its waiters first come, first served), so a turn
of the loop runs one slice of sync whatever the number of clouds: the work per turn is
bounded by rows, not by clouds. Every pass still moves, round robin; a pass alone pays one
uncontended lock and the same `sleep(0)` as before.

Only sync's slices take turns, and none is taken while holding the write lock (a slice that
writes takes its turn first, then the lock), so no lock cycle can form with the other
controllers or the API, which never ask for a turn.

In a deep pass (the first full pass of a worker, every listed server and every row read)
the API goes first (canopy/api_first.py): the pass holding the turn waits, before its
slice, while this loop serves a request, up to a bound (`api_first.BOUND`), so requests
meet fewer of the start-up passes' slices. Only deep passes: the quick passes that see a
boot end or a change (a burst's) are not slowed by an API that is never idle. That wait is
inside the turn and before the slice's write lock, so it holds no lock a request could
wait for (a request may wait for the write lock held by another controller, which never
waits for the API), and it is bounded whatever happens: sync makes progress under
sustained load, one slice per bound at least.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar, Token

from canopy.api_first import after_requests

_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def _lock() -> asyncio.Lock:
    loop = asyncio.get_running_loop()
    lock = _turns.get(loop)
    if lock is None:
        lock = _turns[loop] = asyncio.Lock()
    return lock


# Whether the pass running in this task is a deep one (each pass runs in its own task).
_deep: ContextVar[bool] = ContextVar("canopy_sync_deep_pass", default=False)


def deep_pass(deep: bool) -> Token[bool]:
    """Mark the pass in this task as deep (or not) until `end_pass` with the token."""
    return _deep.set(deep)


def end_pass(token: Token[bool]) -> None:
    _deep.reset(token)


async def api_goes_first() -> None:
    """In a deep pass, wait (bounded) while this loop serves a request; else nothing."""
    if _deep.get():
        await after_requests()


@asynccontextmanager
async def turn() -> AsyncIterator[None]:
    """Run the block as this loop's one sync slice, then give the loop back."""
    async with _lock():
        await api_goes_first()  # in a deep pass, for a bounded time
        yield
    await asyncio.sleep(0)  # the loop's turn: requests, other controllers, then other passes
