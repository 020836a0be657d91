"""Creates waiting for the child's scheduler, served by one listing for all of them.

A create waits (up to `schedule_wait_seconds`) until Nova has scheduled its server, so
that "No valid host" becomes a capacity error at once. Reading each waiting server by id
every poll interval was most of the calls canopy made to a busy Nova (a burst of 50 made
582 `GET /servers/{id}`; docs/architecture.md, "The calls canopy makes to Nova"). Here
one `GET /servers/detail?changes-since=` (the oldest waiter's start, less the overlap)
answers every waiter at once; the interval doubles from `schedule_poll_seconds` up to a
second (or that setting, if larger) while anyone waits. A server not listed yet (Nova
may not list a build request by changes-since) is still scheduling. At its deadline, or
when a listing fails, a waiter gets None and reads its server by id itself.

Sync asks the child the same question (`changes-since`) on its own interval. Its listing
is offered here (`offer`): it settles the waiters it answers, and when it reached back far
enough for every waiter and was asked after each of them began, it stands for the watch's
next listing, which then waits its interval from it instead of asking again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from canopy.domain.clock import Clock
from canopy.domain.errors import CloudError
from canopy.domain.states import RemoteState
from canopy.providers.openstack.states import remote_state

POLL_CAP = 1.0  # seconds: the longest interval between two listings


def scheduling(server: Mapping[str, Any]) -> bool:
    """Whether Nova has yet to place this server (BUILD, task `scheduling` or none)."""
    return remote_state(server.get("status")) == RemoteState.PENDING and server.get(
        "OS-EXT-STS:task_state"
    ) in (None, "scheduling")


@dataclass
class _Waiter:
    since: datetime
    deadline: datetime
    done: asyncio.Future[dict[str, Any] | None]


class ScheduleWatch:
    def __init__(
        self,
        listing: Callable[[datetime], Awaitable[list[dict[str, Any]]]],
        clock: Clock,
        poll_seconds: float,
        overlap_seconds: float,
    ) -> None:
        self._listing = listing
        self._clock = clock
        self._poll = poll_seconds
        self._overlap = timedelta(seconds=overlap_seconds)
        self._waiters: dict[str, _Waiter] = {}
        self._task: asyncio.Task[None] | None = None
        self._offered: tuple[datetime, datetime] | None = None  # (asked at, since)

    async def wait(self, remote_id: str, seconds: float) -> dict[str, Any] | None:
        """The server as listed once scheduled (or gone: DELETED); None at `seconds`."""
        now = self._clock.now()
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[dict[str, Any] | None] = loop.create_future()
        self._waiters[remote_id] = _Waiter(now, now + timedelta(seconds=seconds), fut)
        # A poller left pending on a loop that is gone (a driver used from another
        # asyncio.run) would never answer: one on this loop then.
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._task = asyncio.create_task(self._run())
        try:
            return await fut
        finally:
            self._waiters.pop(remote_id, None)

    def _settle(self, remote_id: str, value: dict[str, Any] | None) -> None:
        w = self._waiters.pop(remote_id, None)
        if w is not None and not w.done.done():
            with contextlib.suppress(RuntimeError):  # a waiter on a loop that is closed
                w.done.set_result(value)

    def offer(
        self, listed: list[dict[str, Any]], since: datetime, asked_at: datetime, whole: bool = True
    ) -> None:
        """A `changes-since` listing made by someone else (sync), asked at `asked_at` for
        changes since `since`: settle the waiters it answers, and keep it as the watch's
        latest listing for the waiters it covers. A page that is not the listing's last
        (`whole` False) settles the waiters it answers, and stands for nothing more."""
        if not self._waiters:
            return
        self._answer(listed)
        if whole and (self._offered is None or asked_at > self._offered[0]):
            self._offered = (asked_at, since)

    def _covers(self, offered: tuple[datetime, datetime] | None, after: datetime) -> bool:
        """Whether an offered listing, asked after `after`, answers every waiter as the
        watch's own would: asked once each began, reaching back past each one's start."""
        if offered is None or offered[0] <= after:
            return False
        asked_at, since = offered
        return all(
            since <= w.since - self._overlap and w.since <= asked_at for w in self._waiters.values()
        )

    def _answer(self, listed: list[dict[str, Any]]) -> None:
        for s in listed:
            rid = str(s.get("id"))
            if rid in self._waiters and not scheduling(s):
                self._settle(rid, s)

    def _expire(self, failed: bool) -> None:
        now = self._clock.now()
        for rid, w in list(self._waiters.items()):
            if failed or now >= w.deadline:
                self._settle(rid, None)  # the waiter reads its server itself

    async def _run(self) -> None:
        step = self._poll
        cap = max(self._poll, POLL_CAP)
        last = self._clock.now()  # when the last listing that answered every waiter ended
        try:
            while self._waiters:
                now = self._clock.now()
                nearest = min(w.deadline for w in self._waiters.values())
                due = last + timedelta(seconds=step)
                await self._clock.sleep(max(0.0, (min(due, nearest) - now).total_seconds()))
                step = min(step * 2, cap)
                if not self._waiters:
                    return
                if self._covers(self._offered, last):
                    assert self._offered is not None
                    last = self._offered[0]  # sync's listing stood for this one
                    self._expire(failed=False)
                    continue
                since = min(w.since for w in self._waiters.values()) - self._overlap
                try:
                    listed = await self._listing(since)
                except CloudError:
                    listed = None
                last = self._clock.now()
                self._answer(listed or [])
                self._expire(failed=listed is None)
        finally:
            for rid in list(self._waiters):
                self._settle(rid, None)

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
