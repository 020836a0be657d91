"""Dead deliveries, and pending ones that wait too long, are pruned after the retention."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from canopy.notifications.controller import PRUNE_EVERY_SECONDS
from canopy.notifications.outbox import emit
from canopy.store.models import OutboxEvent
from tests.controllers.harness import Plane

from .helpers import Receiver, deliveries, notify_plane, subscribe


async def _emit(p: Plane, subject: str) -> None:
    async with p.db.session() as s:
        emit(s, "lease.update", subject, p.ctx.project_id, {}, at=p.clock.now())


async def test_dead_and_long_waiting_deliveries_and_their_events_are_pruned(
    db_url: str, tmp_path: Path
) -> None:
    p = await notify_plane(db_url, tmp_path, max_attempts=1, retention_seconds=100.0)
    rx = Receiver(status=503)
    await rx.start()
    try:
        await subscribe(p, rx.url)  # every send fails: dead at once
        await subscribe(p, rx.url, enabled=False)  # paused: its deliveries wait
        await _emit(p, "lease/old")
        await _emit(p, "lease/old")
        await p.worker.notifications.run_once()
        got = sorted(d.status for d in await deliveries(p))
        # The live one's first died, its second waits behind it; the paused one's both wait.
        assert got == ["dead", "pending", "pending", "pending"]
        p.clock.advance(PRUNE_EVERY_SECONDS + 1)
        await _emit(p, "lease/new")
        await p.worker.notifications.run_once()
        left = await deliveries(p)
        assert {d.subject for d in left} == {"lease/new"}
        assert sorted(d.status for d in left) == ["dead", "pending"]  # younger: kept
        async with p.db.read() as s:
            subjects = list((await s.execute(select(OutboxEvent.subject))).scalars())
        assert subjects == ["lease/new"]
    finally:
        await rx.stop()
        await p.close()


async def test_a_delivery_between_retries_is_not_pruned(db_url: str, tmp_path: Path) -> None:
    p = await notify_plane(
        db_url,
        tmp_path,
        max_attempts=5,
        retention_seconds=100.0,
        backoff_base_seconds=PRUNE_EVERY_SECONDS * 4,
        backoff_max_seconds=PRUNE_EVERY_SECONDS * 4,
    )
    rx = Receiver(status=503)
    await rx.start()
    try:
        await subscribe(p, rx.url)
        await _emit(p, "lease/a")
        await p.worker.notifications.run_once()  # fails; next try hours later
        p.clock.advance(PRUNE_EVERY_SECONDS + 1)
        await p.worker.notifications.run_once()  # prunes; the retry is not due yet
        [d] = await deliveries(p)
        assert d.status == "pending" and d.retries == 1
    finally:
        await rx.stop()
        await p.close()
