"""Injected time. Controllers, the scheduler, leases and the sim cloud take a Clock."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Wall time as an aware UTC datetime, plus a sleep that honours the same time."""

    def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class FakeClock:
    """A clock for tests: time moves only when told to, or when someone sleeps.

    `sleep(s)` moves time forward by `s` and yields once, so code that waits on the clock
    runs instantly and deterministically. Tests move time with `advance`.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._now += timedelta(seconds=seconds)
        await asyncio.sleep(0)


def utcnow() -> datetime:
    """The real time; only for places that are not part of a controller's logic (logs)."""
    return datetime.now(UTC)


def monotonic() -> float:
    return time.monotonic()
