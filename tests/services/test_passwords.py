"""The password pool: Argon2 in threads of its own, at most `threads` at once and `queue`
waiting; beyond that a refusal at once, and a slot is free only when its thread is done."""

from __future__ import annotations

import asyncio
import threading

import pytest
from argon2 import PasswordHasher

from canopy.domain.errors import Overloaded
from canopy.services.passwords import (
    UNUSABLE,
    PasswordPool,
    hash_password,
    needs_rehash,
    verify_password,
)


class _Gate:
    """A blocking job whose end the test decides; counts the threads inside."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.inside = 0
        self.threads: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            self.inside += 1
            self.threads.add(threading.current_thread().name)
        self.open.wait(10)
        with self._lock:
            self.inside -= 1
        return "done"


async def _until(check: object, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.005)):
        if check():  # type: ignore[operator]
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not met in time")


async def test_beyond_threads_and_queue_a_request_is_refused_at_once() -> None:
    pool = PasswordPool(threads=1, queue=1)
    gate = _Gate()
    running = asyncio.create_task(pool._run(gate))
    waiting = asyncio.create_task(pool._run(gate))
    await _until(lambda: gate.inside == 1)
    with pytest.raises(Overloaded) as refused:
        await pool._run(gate)
    assert refused.value.retry_after == 1
    assert gate.inside == 1  # the queued one waits for the slot, not for a thread
    gate.open.set()
    assert await running == "done" and await waiting == "done"
    assert pool.peak == 1
    assert gate.threads == {"canopy-argon2"}
    # Everything is free again.
    assert await pool._run(lambda: "again") == "again"


async def test_a_caller_who_stops_waiting_frees_its_slot_only_when_the_thread_ends() -> None:
    pool = PasswordPool(threads=1, queue=0)
    gate = _Gate()
    task = asyncio.create_task(pool._run(gate))
    await _until(lambda: gate.inside == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The thread still runs: its slot is not handed to anyone else yet.
    with pytest.raises(Overloaded):
        await pool._run(lambda: "x")
    gate.open.set()
    await _until(lambda: pool.running == 0)
    assert await pool._run(lambda: "x") == "x"


async def test_a_cancelled_waiter_leaves_the_queue() -> None:
    pool = PasswordPool(threads=1, queue=1)
    gate = _Gate()
    running = asyncio.create_task(pool._run(gate))
    await _until(lambda: gate.inside == 1)
    waiter = asyncio.create_task(pool._run(lambda: "never"))
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    # Its place in the queue is free for the next caller.
    queued = asyncio.create_task(pool._run(lambda: "next"))
    await asyncio.sleep(0.01)
    gate.open.set()
    assert await running == "done" and await queued == "next"


async def test_an_error_in_the_thread_reaches_the_caller() -> None:
    pool = PasswordPool(threads=1, queue=0)

    def boom() -> None:
        raise ValueError("bad")

    with pytest.raises(ValueError, match="bad"):
        await pool._run(boom)
    assert await pool._run(lambda: 1) == 1


async def test_verify_and_hash_run_in_the_pool_threads() -> None:
    pool = PasswordPool(threads=2, queue=2)
    stored = await pool.hash("pw")
    assert await pool.verify(stored, "pw")
    assert not await pool.verify(stored, "other")
    # No usable hash: a dummy one is checked, so the answer takes as long and is False.
    assert not await pool.verify(UNUSABLE, "pw")
    assert not await pool.verify("not-a-hash", "pw")


def test_hashes_with_other_parameters_need_a_rehash() -> None:
    old = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash("pw")
    assert verify_password(old, "pw")
    assert needs_rehash(old)
    assert not needs_rehash(hash_password("pw"))
    assert not needs_rehash(UNUSABLE)
