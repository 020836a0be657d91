"""Review: a paused subscription's events must wait, not be dropped (docs: "deliveries wait")."""

from __future__ import annotations

from pathlib import Path

from canopy.notifications import subscriptions
from canopy.notifications.outbox import emit

from .helpers import Receiver, deliveries, notify_plane, subscribe


async def test_events_while_paused_are_delivered_after_resume(db_url: str, tmp_path: Path) -> None:
    p = await notify_plane(db_url, tmp_path)
    try:
        sid, _ = await subscribe(p, "https://hooks.example.com/x")
        async with p.db.session() as s:
            await subscriptions.set_enabled(s, p.ctx, sid, False, p.clock.now())
        async with p.db.session() as s:
            emit(s, "lease.create", "lease/a", p.ctx.project_id, {}, at=p.clock.now())
        await p.worker.notifications.run_once()
        async with p.db.session() as s:
            await subscriptions.set_enabled(s, p.ctx, sid, True, p.clock.now())
        made = await deliveries(p)
        assert len(made) == 1, "the event announced while paused was never queued: it is lost"
    finally:
        await p.close()


async def test_a_paused_subscription_sends_nothing_until_resumed(
    db_url: str, tmp_path: Path
) -> None:
    p = await notify_plane(db_url, tmp_path)
    rx = Receiver()
    await rx.start()
    try:
        sid, _ = await subscribe(p, rx.url, enabled=False)
        async with p.db.session() as s:
            emit(s, "lease.create", "lease/a", p.ctx.project_id, {}, at=p.clock.now())
        for _ in range(3):
            await p.worker.notifications.run_once()
            p.clock.advance(10)
        assert rx.got == [] and [d.status for d in await deliveries(p)] == ["pending"]
        async with p.db.session() as s:
            await subscriptions.set_enabled(s, p.ctx, sid, True, p.clock.now())
        await p.worker.notifications.run_once()
        assert list(rx.subjects()) == ["lease/a"]
        assert [d.status for d in await deliveries(p)] == ["delivered"]
    finally:
        await rx.stop()
        await p.close()
