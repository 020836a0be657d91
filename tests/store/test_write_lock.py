"""SQLite's write lock inside one process: the controllers' transactions go before the
API's queued writes, each queue first come first served, and a cancelled waiter neither
keeps nor loses the lock for the others."""

from __future__ import annotations

import asyncio

import pytest

from canopy.store.write_lock import WriteLock


async def _holder(lock: WriteLock, name: str, order: list[str], *, admission: bool) -> None:
    await lock.acquire(admission=admission)
    order.append(name)
    lock.release()


async def test_work_in_progress_goes_before_requests_queued_earlier() -> None:
    lock = WriteLock()
    order: list[str] = []
    await lock.acquire()
    tasks = [
        asyncio.create_task(_holder(lock, "api-1", order, admission=True)),
        asyncio.create_task(_holder(lock, "api-2", order, admission=True)),
    ]
    await asyncio.sleep(0)
    tasks.append(asyncio.create_task(_holder(lock, "placement", order, admission=False)))
    tasks.append(asyncio.create_task(_holder(lock, "sync", order, admission=False)))
    await asyncio.sleep(0)
    assert lock.waiting() == 4 and order == []
    lock.release()
    await asyncio.gather(*tasks)
    assert order == ["placement", "sync", "api-1", "api-2"]
    assert not lock.locked()


async def test_a_free_lock_is_taken_at_once_and_nobody_barges_past_a_waiter() -> None:
    lock = WriteLock()
    await lock.acquire(admission=True)
    assert lock.locked()
    order: list[str] = []
    waiter = asyncio.create_task(_holder(lock, "first", order, admission=True))
    await asyncio.sleep(0)
    lock.release()  # handed to the waiter: still held, a newcomer queues behind it
    assert lock.locked()
    late = asyncio.create_task(_holder(lock, "late", order, admission=False))
    await asyncio.gather(waiter, late)
    assert order == ["first", "late"]


async def test_a_cancelled_waiter_leaves_the_queue_and_passes_on_a_lock_handed_to_it() -> None:
    lock = WriteLock()
    order: list[str] = []
    await lock.acquire()
    gone = asyncio.create_task(_holder(lock, "gone", order, admission=False))
    stays = asyncio.create_task(_holder(lock, "stays", order, admission=True))
    await asyncio.sleep(0)
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert lock.waiting() == 1
    # Handed over in the same turn as its cancellation: it passes the lock on.
    racing = asyncio.create_task(_holder(lock, "racing", order, admission=False))
    await asyncio.sleep(0)
    lock.release()
    racing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await racing
    await stays
    assert order == ["stays"] and not lock.locked()
