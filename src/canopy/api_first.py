"""The API goes first: the requests this event loop is serving, and a bounded wait for none.

`canopy up` serves the API and runs the controllers on one event loop. Sync's slices take
turns (controllers/sync_turns.py), one slice per turn of the loop, but a request awaits
several times (a read in a thread, the write lock, the socket) and each time it is
resumed it was queued behind a sync slice that was already ready: with 20 clouds' first
(deep) passes running, a request's p50 rose by several slices (bench/list_latency.py).

Here the HTTP layer counts the requests in flight in this loop (`InFlight`, a pure ASGI
middleware: an integer and an `asyncio.Event`, no lock), and a slice of a deep sync pass,
before it runs, waits until none is in flight and none finished within `LINGER` (the next
request of a client that asks one after another is on its way), but never longer than
`BOUND`: under sustained load sync still runs one slice per `BOUND`, so it always makes
progress. An idle API costs sync nothing: it proceeds at once. Per event loop, like sync's
turns; a loop that serves no request (a worker alone) never waits.

Only public asyncio APIs: the loop's clock, an Event, `asyncio.timeout_at` and `sleep`.
"""

from __future__ import annotations

import asyncio
import math
import weakref

from starlette.types import ASGIApp, Receive, Scope, Send

# The longest a slice waits for the API: longer than a page takes on a quiet machine (2 ms),
# so a request's steps never queue behind a sync slice, and short enough that sync keeps
# moving when the API is always busy (a client polling every 20 ms, 50 clients): 25 ms
# per slice made a burst's servers reach ACTIVE 0.2-0.7 s later (bench/burst.py).
BOUND = 0.005
# How long after the last request finished a slice still waits: a sequential client's
# next request arrives within a fraction of a millisecond of the last answer.
LINGER = 0.001
# A timer may fire a hair before its time (the loop's clock resolution, float sums): a
# wait within this of its end is over.
_EARLY = 1e-6


class Requests:
    """The requests one event loop is serving."""

    __slots__ = ("idle", "in_flight", "last_done")

    def __init__(self) -> None:
        self.in_flight = 0
        self.idle = asyncio.Event()
        self.idle.set()
        self.last_done = -math.inf  # loop time when in_flight last fell to 0

    def started(self) -> None:
        self.in_flight += 1
        self.idle.clear()

    def finished(self, now: float) -> None:
        self.in_flight -= 1
        if not self.in_flight:
            self.last_done = now
            self.idle.set()


_per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Requests] = (
    weakref.WeakKeyDictionary()
)


def requests() -> Requests:
    """The running loop's requests (made on first use)."""
    loop = asyncio.get_running_loop()
    r = _per_loop.get(loop)
    if r is None:
        r = _per_loop[loop] = Requests()
    return r


async def after_requests(bound: float = BOUND, linger: float = LINGER) -> None:
    """Return when this loop serves no request and has served none for `linger` seconds,
    or after `bound` seconds, whichever is first; at once on a loop that serves none."""
    loop = asyncio.get_running_loop()
    r = _per_loop.get(loop)
    if r is None:
        return
    deadline = loop.time() + bound - _EARLY
    while True:
        now = loop.time()
        if now >= deadline:
            return
        if r.in_flight:
            try:
                async with asyncio.timeout_at(deadline):
                    await r.idle.wait()
            except TimeoutError:
                return
            continue
        quiet_at = r.last_done + linger - _EARLY
        if now >= quiet_at:
            return
        await asyncio.sleep(min(quiet_at, deadline) - now + _EARLY)


class InFlight:
    """Counts this loop's HTTP requests while the app serves them (outermost middleware)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        r = requests()
        r.started()
        try:
            await self.app(scope, receive, send)
        finally:
            r.finished(asyncio.get_running_loop().time())
