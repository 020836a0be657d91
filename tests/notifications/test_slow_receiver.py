"""A slow receiver holds up neither the next pass nor other subscriptions' events, and
takes at most `per_subscription` of a worker's sends; its own events still arrive in order."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from canopy.reservations.service import LeaseService
from tests.controllers.harness import Plane
from tests.reservations.helpers import CLOUDS, body

from .helpers import Receiver, deliveries, notify_plane, subscribe


async def _lease(p: Plane, name: str) -> str:
    svc = LeaseService(p.settings, p.clock, p.service)
    t0 = p.clock.now()
    async with p.db.session() as s:
        lease = await svc.create(
            s, p.ctx, body(name, t0 + timedelta(hours=1), t0 + timedelta(hours=2))
        )
    return lease.id


async def _until(p: Plane, cond: Callable[[], bool], seconds: float = 10.0) -> None:
    """Run passes, as a worker woken by each finished send does, until `cond()` holds
    (real time: the sends are real HTTP)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while not cond():
        assert loop.time() < end, "timed out"
        await p.worker.notifications.run_once()
        await asyncio.sleep(0.01)


async def test_a_slow_receiver_holds_up_neither_the_next_pass_nor_other_subscriptions(
    db_url: str, tmp_path: Path
) -> None:
    p = await notify_plane(
        db_url, tmp_path, CLOUDS, pass_wait_seconds=0.0, concurrency=4, per_subscription=2
    )
    slow, fast = Receiver(gate=asyncio.Event()), Receiver()
    await slow.start()
    await fast.start()
    notes = p.worker.notifications
    try:
        await subscribe(p, slow.url, event_types=("lease.*",))
        await subscribe(p, fast.url, event_types=("lease.*",))
        first = [await _lease(p, f"a{i}") for i in range(5)]
        await notes.run_once()  # returns at once, with the slow receiver holding two
        assert slow.held <= 2
        await _until(p, lambda: len(fast.got) == 5 and slow.held == 2)
        # Later events, while the slow receiver still holds two: the fast one gets them
        # in the next passes, and the slow one never holds more than its share.
        later = [await _lease(p, f"b{i}") for i in range(3)]
        await _until(p, lambda: len(fast.got) == 8)
        assert slow.most_held == 2 and not slow.got
        assert {r.event["subject"] for r in fast.got} == {f"lease/{i}" for i in first + later}
        # Let it answer: everything reaches it too, once per event.
        assert slow.gate is not None
        slow.gate.set()
        await _until(p, lambda: len(slow.got) == 8)
        assert sorted(r.event["subject"] for r in slow.got) == sorted(
            f"lease/{i}" for i in first + later
        )
        assert slow.most_held == 2
    finally:
        await slow.stop()
        await fast.stop()
        await p.close()


async def test_stopping_a_worker_mid_send_leaves_the_delivery_to_be_sent_again(
    db_url: str, tmp_path: Path
) -> None:
    p = await notify_plane(db_url, tmp_path, CLOUDS, pass_wait_seconds=0.0)
    slow = Receiver(gate=asyncio.Event())
    await slow.start()
    try:
        await subscribe(p, slow.url, event_types=("lease.*",))
        await _lease(p, "a")
        await p.worker.notifications.run_once()
        await _until(p, lambda: slow.held == 1)
        await p.worker.notifications.close()  # the send in flight is cancelled
        (d,) = await deliveries(p)
        assert d.status == "pending" and d.delivered_at is None
    finally:
        await slow.stop()
        await p.close()
