"""A deep sync pass lets the API go first (controllers/sync_turns.py, canopy/api_first.py):
its slice waits while a request is in flight, for a bounded time, and no lock cycle forms
with the write lock; other passes do not wait. On a virtual clock: no test sleeps."""

from __future__ import annotations

import asyncio

import pytest

from canopy.api_first import BOUND, LINGER, requests
from canopy.controllers.sync_turns import deep_pass, end_pass, turn
from canopy.store.write_lock import WriteLock
from tests.virtual_time import run


async def _slice_starts(n: int = 1, deep: bool = True) -> list[float]:
    """When each of `n` sync slices (one pass's, one after another) began, from now."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    out = []
    marked = deep_pass(deep)
    try:
        for _ in range(n):
            async with turn():
                out.append(loop.time() - t0)
    finally:
        end_pass(marked)
    return out


async def locked_request(lock: WriteLock, order: list[str]) -> None:
    """A request, counted in flight while it takes the write lock (as the API's writes do)."""
    r = requests()
    r.started()
    try:
        await lock.acquire(admission=True)
        order.append("request")
        lock.release()
    finally:
        r.finished(asyncio.get_running_loop().time())


def test_a_slice_runs_at_once_when_no_request_is_served() -> None:
    assert run(_slice_starts(3)) == [0, 0, 0]


def test_a_slice_waits_for_the_request_in_flight() -> None:
    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        r = requests()
        r.started()
        loop.call_later(0.004, lambda: r.finished(loop.time()))
        return await _slice_starts()

    assert run(main()) == [pytest.approx(0.004 + LINGER, abs=1e-5)]


def test_a_pass_that_is_not_deep_does_not_wait() -> None:
    async def main() -> list[float]:
        requests().started()  # the API always busy: a burst's poller
        return await _slice_starts(3, deep=False)

    assert run(main()) == [0, 0, 0]


def test_sync_still_moves_under_sustained_load_one_slice_per_bound() -> None:
    async def main() -> list[float]:
        requests().started()  # a request that never ends: the API is always busy
        return await _slice_starts(4)

    starts = run(main())
    assert starts == [pytest.approx(BOUND * k, abs=1e-4) for k in (1, 2, 3, 4)]


def test_twenty_passes_each_wait_for_the_request_not_one_after_another() -> None:
    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        r = requests()
        r.started()
        loop.call_later(0.003, lambda: r.finished(loop.time()))
        passes = await asyncio.gather(*(_slice_starts() for _ in range(20)))
        return [t for p in passes for t in p]

    starts = run(main())
    # The first waits for the request; the others find the API idle, one per turn.
    assert starts == [pytest.approx(0.003 + LINGER, abs=1e-5)] * 20


def test_no_deadlock_with_the_write_lock_held_by_another_controller() -> None:
    """A request waits for the write lock, held by another controller until sync has had
    its slice; sync's slice waits for the request: the bound breaks the wait, and sync
    writes (turn first, then the write lock) after the request."""

    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        lock = WriteLock()
        order: list[str] = []
        slice_ran = asyncio.Event()

        async def controller() -> None:
            await lock.acquire()
            await slice_ran.wait()  # held until sync's slice has run
            order.append("controller")
            lock.release()

        async def request() -> None:
            await locked_request(lock, order)

        async def sync_pass() -> None:
            deep_pass(True)  # in this task's own context
            async with turn():
                order.append(f"slice at {loop.time() - t0:.3f}")
                slice_ran.set()
                await lock.acquire()
                order.append("sync write")
                lock.release()

        t0 = loop.time()
        c = asyncio.create_task(controller())
        await asyncio.sleep(0)
        await asyncio.gather(request(), sync_pass(), c)
        return order

    assert run(main()) == [f"slice at {BOUND:.3f}", "controller", "request", "sync write"]


def test_no_deadlock_when_a_request_waits_for_sync_s_write() -> None:
    """One pass writes (its turn, then the write lock); a request waits for that lock; the
    next pass waits for its turn, then for the request, which gets the lock when the first
    pass lets it go: all end, none at the bound."""

    async def main() -> tuple[list[str], float]:
        loop = asyncio.get_running_loop()
        lock = WriteLock()
        order: list[str] = []
        wrote = asyncio.Event()

        async def writing_pass() -> None:
            async with turn():
                await lock.acquire()
                order.append("pass 1 writes")
                wrote.set()
                await asyncio.sleep(0.002)  # the write takes a while
                lock.release()

        async def request() -> None:
            await wrote.wait()
            await locked_request(lock, order)

        async def next_pass() -> None:
            deep_pass(True)  # in this task's own context
            await wrote.wait()
            async with turn():
                order.append("pass 2")

        t0 = loop.time()
        await asyncio.gather(writing_pass(), request(), next_pass())
        return order, loop.time() - t0

    order, took = run(main())
    assert order == ["pass 1 writes", "request", "pass 2"]
    assert took < BOUND
