"""An event loop on virtual time, for tests of timed waits without sleeping.

The loop's clock is a number that moves only when the loop has nothing ready to run and
would block: then it jumps to the next timer at once. Real I/O is still polled (with no
wait), so use it for code that waits on timers, events and locks, not on threads."""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class _Selector(selectors.DefaultSelector):
    def __init__(self, loop_clock: list[float]) -> None:
        super().__init__()
        self._clock = loop_clock

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        events = super().select(0)
        if events or timeout == 0:
            return events
        if timeout is None:  # nothing ready, no timer: every task waits on another
            raise RuntimeError("deadlock: nothing ready and no timer")
        self._clock[0] += timeout  # nothing to do until the next timer: go there
        return events


class VirtualLoop(asyncio.SelectorEventLoop):
    """A selector loop whose `time()` is virtual (see module doc)."""

    def __init__(self) -> None:
        self._virtual = [1000.0]
        super().__init__(_Selector(self._virtual))

    def time(self) -> float:
        return self._virtual[0]


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to completion on a fresh VirtualLoop."""
    loop = VirtualLoop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()
