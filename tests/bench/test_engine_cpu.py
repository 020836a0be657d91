"""bench/engine_cpu.py counts the CPU of the metered passes only: not that of other tasks
running on the same loop while a pass waits."""

from __future__ import annotations

import asyncio
import time

import pytest
from bench.engine_cpu import meter


def _burn(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


class _Controller:
    async def run_once(self) -> int:
        _burn(0.05)
        await asyncio.sleep(0.2)  # another task burns 0.15 s meanwhile
        _burn(0.05)
        return 1


async def test_only_the_passes_own_cpu_is_counted() -> None:
    c = _Controller()
    found = meter(c)

    async def other() -> None:
        await asyncio.sleep(0.01)
        _burn(0.15)

    busy = asyncio.create_task(other())
    assert await c.run_once() == 1
    await busy
    assert found.passes == 1
    assert 0.09 <= found.seconds < 0.14, found.seconds


async def test_a_cancelled_pass_is_cancelled_and_its_cpu_counted() -> None:
    c = _Controller()
    found = meter(c)
    task = asyncio.create_task(c.run_once())
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert found.passes == 0
    assert 0.04 <= found.seconds < 0.09, found.seconds
