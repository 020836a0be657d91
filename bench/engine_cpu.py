"""The stack engine's own CPU: the event-loop thread's CPU while the orchestration
controller's passes run, and only then.

`meter(controller)` wraps the controller's `run_once`. Each pass is a coroutine; the wrapper
reads `time.thread_time()` around every resumption of it (each `send` to the next `await`
that suspends), so the time the pass spends suspended, while the worker's other loops
(placement, sync, provisioning, the sim cloud) run on the same thread, is not counted. All
of the engine's work is inside its passes (it starts no tasks of its own). Not counted:
SQLite's own execution of the engine's statements, which aiosqlite runs in its thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine, Generator
from dataclasses import dataclass
from typing import Any


@dataclass
class EngineMeter:
    seconds: float = 0.0  # CPU of the engine's passes, on the loop's thread
    passes: int = 0  # passes that stepped at least one stack
    idle_passes: int = 0  # passes that found nothing due (their query is counted too)

    def reset(self) -> None:
        self.seconds, self.passes, self.idle_passes = 0.0, 0, 0


class _Metered:
    """Awaits `coro`, adding the CPU of each of its resumptions to `meter`."""

    def __init__(self, coro: Coroutine[Any, Any, int], meter: EngineMeter) -> None:
        self.coro, self.meter = coro, meter

    def __await__(self) -> Generator[Any, Any, int]:
        coro, meter = self.coro, self.meter
        send: Any = None
        thrown: BaseException | None = None
        while True:
            t0 = time.thread_time()
            try:
                yielded = coro.send(send) if thrown is None else coro.throw(thrown)
            except StopIteration as done:
                meter.seconds += time.thread_time() - t0
                n = int(done.value)
                if n:
                    meter.passes += 1
                else:
                    meter.idle_passes += 1
                return n
            except BaseException:
                meter.seconds += time.thread_time() - t0
                raise
            meter.seconds += time.thread_time() - t0
            try:
                send, thrown = (yield yielded), None
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as e:  # a cancellation: the pass handles it
                send, thrown = None, e


def meter(controller: Any) -> EngineMeter:
    """Wrap `controller.run_once` (before its loop starts) and return what it counts."""
    found = EngineMeter()
    run_once: Callable[[], Coroutine[Any, Any, int]] = controller.run_once

    async def metered() -> int:
        return await _Metered(run_once(), found)

    controller.run_once = metered
    return found
