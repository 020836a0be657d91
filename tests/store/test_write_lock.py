"""SQLite's write lock inside one process: the controllers' transactions go before the
API's queued writes, each queue first come first served, and a cancelled waiter neither
keeps nor loses the lock for the others."""

from __future__ import annotations

import asyncio

import pytest

from canopy.store.write_lock import ADMISSIONS, WriteLock


async def _holder(lock: WriteLock, name: str, order: list[str], *, admission: bool) -> None:
    await lock.acquire(admission=admission)
    order.append(name)
    lock.release()


async def test_work_in_progress_goes_before_requests_queued_earlier() -> None:
    lock = WriteLock()
    order: list[str] = []
    await lock.acquire(admission=True)
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
    # The requests had had their turn (the one holding the lock): the controllers' turn
    # comes at once and serves both, queued later as they were.
    assert order == ["placement", "sync", "api-1", "api-2"]
    assert not lock.locked()


async def test_a_waiting_controller_goes_after_at_most_a_few_request_writes() -> None:
    lock = WriteLock()
    order: list[str] = []
    await lock.acquire()  # a controller's: the requests' turn comes next
    n = 2 * ADMISSIONS + 1
    tasks = [
        asyncio.create_task(_holder(lock, f"api-{i}", order, admission=True)) for i in range(n)
    ]
    await asyncio.sleep(0)
    tasks += [
        asyncio.create_task(_holder(lock, name, order, admission=False))
        for name in ("placement", "provisioning")
    ]
    await asyncio.sleep(0)
    lock.release()
    await asyncio.gather(*tasks)
    # A few creates gather between the controllers' turns (placement then takes them at
    # once); a turn serves every controller waiting when it began.
    api = [f"api-{i}" for i in range(n)]
    assert order == [*api[:ADMISSIONS], "placement", "provisioning", *api[ADMISSIONS:]]


async def test_a_controllers_turn_ends_with_those_waiting_when_it_began() -> None:
    lock = WriteLock()
    order: list[str] = []
    await lock.acquire(admission=True)
    n = ADMISSIONS + 1
    api = [asyncio.create_task(_holder(lock, f"api-{i}", order, admission=True)) for i in range(n)]
    await asyncio.sleep(0)

    async def again(name: str) -> None:  # a controller that writes once more after its turn
        await _holder(lock, name, order, admission=False)
        await _holder(lock, name + "-again", order, admission=False)

    ctl = [asyncio.create_task(again("placement"))]
    await asyncio.sleep(0)
    lock.release()
    await asyncio.gather(*api, *ctl)
    # placement's second write came during its turn: ADMISSIONS requests go before it.
    names = [f"api-{i}" for i in range(n)]
    assert order == ["placement", *names[:ADMISSIONS], "placement-again", *names[ADMISSIONS:]]


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
    await lock.acquire(admission=True)
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


async def test_a_waiter_cancelled_then_skipped_by_a_release_still_ends_cancelled() -> None:
    lock = WriteLock()
    order: list[str] = []
    await lock.acquire()
    gone = asyncio.create_task(_holder(lock, "gone", order, admission=False))
    stays = asyncio.create_task(_holder(lock, "stays", order, admission=False))
    await asyncio.sleep(0)
    # Cancelled, and before it runs again a release drops its (cancelled) place in the
    # queue: it must still end as cancelled, not with an error of its own.
    gone.cancel()
    lock.release()
    with pytest.raises(asyncio.CancelledError):
        await gone
    await stays
    assert order == ["stays"] and not lock.locked() and lock.waiting() == 0


@pytest.mark.parametrize("when", ["before", "after"], ids=["left", "skipped"])
async def test_a_turn_does_not_grow_when_one_of_its_writers_is_cancelled(when: str) -> None:
    lock = WriteLock()
    order: list[str] = []
    done_writing = asyncio.Event()
    gone: asyncio.Task[None] | None = None

    async def placement() -> None:  # holds the lock until told
        await lock.acquire()
        order.append("placement")
        await done_writing.wait()
        if when == "after":
            # Cancelled in the same step as the release: the release passes over its
            # (cancelled) place before it can leave the queue itself.
            assert gone is not None
            gone.cancel()
        lock.release()

    await lock.acquire(admission=True)
    first = asyncio.create_task(placement())
    gone = asyncio.create_task(_holder(lock, "gone", order, admission=False))
    await asyncio.sleep(0)
    lock.release()  # the controllers' turn begins: it is placement's and gone's
    await asyncio.sleep(0)
    assert order == ["placement"]
    # Queued after the turn began: a request, then another controller write.
    api = asyncio.create_task(_holder(lock, "api", order, admission=True))
    await asyncio.sleep(0)
    late = asyncio.create_task(_holder(lock, "sync", order, admission=False))
    await asyncio.sleep(0)
    if when == "before":  # gone leaves the queue before placement releases
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
    done_writing.set()
    await asyncio.gather(first, api, late)
    with pytest.raises(asyncio.CancelledError):
        await gone
    # The turn ends with placement, as it would have with gone: the request queued
    # before sync goes first.
    assert order == ["placement", "api", "sync"]
    assert not lock.locked() and lock.waiting() == 0
