"""Sync's `changes-since` listing offered to the creates waiting for the child's scheduler:
it settles whom it answers, and stands for the watch's next listing only when it was asked
after every waiter began and reaches back past each one's start (a clock that moves only
when the test moves it, and a scripted listing; no Nova)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from canopy.providers.openstack.schedule_watch import ScheduleWatch

OVERLAP = 2.0


class SteppedClock:
    """Sleepers wake only when the test advances time past their wake-up."""

    def __init__(self) -> None:
        self._now = datetime(2026, 1, 1, tzinfo=UTC)
        self._sleepers: list[tuple[datetime, asyncio.Future[None]]] = []

    def now(self) -> datetime:
        return self._now

    async def sleep(self, seconds: float) -> None:
        fut = asyncio.get_running_loop().create_future()
        self._sleepers.append((self._now + timedelta(seconds=seconds), fut))
        await fut

    async def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
        due = [(at, f) for at, f in self._sleepers if at <= self._now]
        self._sleepers = [(at, f) for at, f in self._sleepers if at > self._now]
        for _, f in due:
            f.set_result(None)
        for _ in range(10):
            await asyncio.sleep(0)


def _server(rid: str, status: str) -> dict[str, Any]:
    task = "scheduling" if status == "BUILD" else None
    return {"id": rid, "status": status, "OS-EXT-STS:task_state": task}


class Listing:
    """The watch's own listing: records when it was asked; answers from `servers`."""

    def __init__(self, clock: SteppedClock) -> None:
        self.clock = clock
        self.asked: list[datetime] = []
        self.servers: list[dict[str, Any]] = []

    async def __call__(self, since: datetime) -> list[dict[str, Any]]:
        self.asked.append(self.clock.now())
        return list(self.servers)


async def _start(
    watch: ScheduleWatch, clock: SteppedClock, *rids: str
) -> list[asyncio.Task[dict[str, Any] | None]]:
    tasks = [asyncio.create_task(watch.wait(rid, 10.0)) for rid in rids]
    for _ in range(5):
        await asyncio.sleep(0)
    return tasks


def _at(clock: SteppedClock, start: datetime) -> float:
    return round((clock.now() - start).total_seconds(), 3)


async def test_a_sync_listing_asked_after_the_waiters_stands_for_the_watch_next_one() -> None:
    clock = SteppedClock()
    listing = Listing(clock)
    watch = ScheduleWatch(listing, clock, poll_seconds=0.1, overlap_seconds=OVERLAP)
    start = clock.now()
    tasks = await _start(watch, clock, "r1", "r2")
    listing.servers = [_server("r1", "BUILD"), _server("r2", "BUILD")]

    await clock.advance(0.05)
    # Sync's own pass: changes since well before the waiters, asked after they began.
    watch.offer(listing.servers, start - timedelta(seconds=30), clock.now())
    await clock.advance(0.05)  # the watch's first listing was due at 0.1: sync's stood for it
    assert listing.asked == []
    await clock.advance(0.15)  # due again 0.2 after sync's listing (0.05): at 0.25
    assert [_at(clock, start)] == [0.25] and len(listing.asked) == 1
    listing.servers = [_server("r1", "ACTIVE"), _server("r2", "ACTIVE")]
    await clock.advance(0.4)
    assert [(t.result() or {}).get("status") for t in tasks] == ["ACTIVE", "ACTIVE"]
    assert len(listing.asked) == 2
    await watch.close()


async def test_a_sync_listing_settles_the_waiters_it_answers_at_once() -> None:
    clock = SteppedClock()
    listing = Listing(clock)
    watch = ScheduleWatch(listing, clock, poll_seconds=0.5, overlap_seconds=OVERLAP)
    tasks = await _start(watch, clock, "r1", "r2")
    await clock.advance(0.1)
    watch.offer([_server("r1", "ERROR"), _server("r2", "BUILD")], clock.now(), clock.now())
    for _ in range(5):
        await asyncio.sleep(0)
    assert tasks[0].done() and (tasks[0].result() or {}).get("status") == "ERROR"
    assert not tasks[1].done()  # still scheduling: it waits on
    assert listing.asked == []
    await watch.close()
    assert tasks[1].result() is None  # closed: it reads its server itself


async def test_a_listing_that_cannot_answer_every_waiter_does_not_stand_for_the_watch() -> None:
    clock = SteppedClock()
    listing = Listing(clock)
    watch = ScheduleWatch(listing, clock, poll_seconds=0.1, overlap_seconds=OVERLAP)
    start = clock.now()
    await _start(watch, clock, "r1")
    listing.servers = [_server("r1", "BUILD"), _server("r2", "BUILD")]
    await clock.advance(0.02)
    asked = clock.now()
    await clock.advance(0.02)
    await _start(watch, clock, "r2")  # began after sync asked: sync's listing may miss it
    watch.offer([_server("r1", "BUILD")], start - timedelta(seconds=30), asked)
    await clock.advance(0.06)
    assert [round((a - start).total_seconds(), 3) for a in listing.asked] == [0.1]

    # Nor does one that does not reach back past a waiter's start (less the overlap).
    later = clock.now()
    watch.offer(listing.servers, later, later)
    await clock.advance(0.2)
    assert len(listing.asked) == 2
    await watch.close()
