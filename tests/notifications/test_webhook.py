"""Webhooks: a receiver on 127.0.0.1 that is down, then up, gets every event at least once,
in order per subject, each signed; a dead delivery holds back only its subject."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from canopy.notifications import subscriptions, webhook
from canopy.reservations.service import LeaseService
from tests.controllers.harness import Plane
from tests.reservations.helpers import CLOUDS, body

from .helpers import Receiver, deliveries, notify_plane, subscribe


async def _leases(p: Plane, n: int) -> list[str]:
    """`n` leases, each created, renamed twice: three events per subject."""
    svc = LeaseService(p.settings, p.clock, p.service)
    t0 = p.clock.now()
    ids = []
    for i in range(n):
        async with p.db.session() as s:
            lease = await svc.create(
                s, p.ctx, body(f"l{i}", t0 + timedelta(hours=1), t0 + timedelta(hours=2))
            )
            ids.append(lease.id)
    for rename in ("x", "y"):
        for i, lease_id in enumerate(ids):
            async with p.db.session() as s:
                await svc.update(s, p.ctx, lease_id, {"name": f"{rename}{i}"})
    return ids


async def _pass(p: Plane, seconds: float = 10.0) -> int:
    n = await p.worker.notifications.run_once()
    p.clock.advance(seconds)
    return n


def _in_order(positions: list[int]) -> bool:
    """Each event's first arrival comes after the first arrival of every earlier one."""
    firsts: list[int] = []
    for pos in positions:
        if pos not in firsts:
            firsts.append(pos)
    return firsts == sorted(firsts)


async def test_a_receiver_down_then_up_gets_everything_in_order_signed(
    db_url: str, tmp_path: Path
) -> None:
    p = await notify_plane(db_url, tmp_path, CLOUDS, max_attempts=50)
    rx = Receiver()
    try:
        _, secret = await subscribe(p, rx.url, event_types=("lease.*",))
        assert secret is not None
        ids = await _leases(p, 4)
        for _ in range(5):  # down: every attempt fails, and is retried later
            await _pass(p)
        pending = await deliveries(p, "pending")
        assert len(pending) == 12
        assert all(d.last_error for d in pending if d.retries)
        assert max(d.retries for d in pending) >= 3
        await rx.start()
        for _ in range(40):
            await _pass(p)
            if not await deliveries(p, "pending"):
                break
        assert not await deliveries(p, "pending")
        by_subject = rx.subjects()
        assert set(by_subject) == {f"lease/{i}" for i in ids}
        for positions in by_subject.values():
            assert len(set(positions)) == 3
            assert _in_order(positions)
        types = [r.event["type"] for r in rx.got if r.event["subject"] == f"lease/{ids[0]}"]
        assert types[:3] == ["lease.create", "lease.update", "lease.update"]
        now = p.clock.now().timestamp()
        for r in rx.got:
            assert webhook.verify(
                secret,
                r.body,
                r.headers["x-canopy-timestamp"],
                r.headers["x-canopy-signature"],
                now,
                tolerance=3600,
            )
            ev = r.event
            assert ev["specversion"] == "1.0" and ev["source"] == "canopy"
            assert r.headers["content-type"].startswith("application/cloudevents+json")
            assert ev["data"]["lease_id"] == ev["subject"].split("/", 1)[1]
    finally:
        await rx.stop()
        await p.close()


async def test_a_forged_or_replayed_request_fails_the_documented_check(
    db_url: str, tmp_path: Path
) -> None:
    p = await notify_plane(db_url, tmp_path, CLOUDS)
    rx = Receiver()
    await rx.start()
    try:
        _, secret = await subscribe(p, rx.url)
        assert secret is not None
        await _leases(p, 1)
        for _ in range(3):
            await _pass(p, 0.0)
        got = rx.got[0]
        ts, sig = got.headers["x-canopy-timestamp"], got.headers["x-canopy-signature"]
        now = p.clock.now().timestamp()
        assert webhook.verify(secret, got.body, ts, sig, now)
        # Another body under the same signature, another secret, an old timestamp, no
        # signature at all: each is what a receiver must refuse.
        doc = json.loads(got.body)
        doc["data"]["name"] = "evil"
        forged = json.dumps(doc, separators=(",", ":")).encode()
        assert not webhook.verify(secret, forged, ts, sig, now)
        assert not webhook.verify("another-secret-entirely", got.body, ts, sig, now)
        assert not webhook.verify(secret, got.body, ts, sig, now + 3600)
        assert not webhook.verify(secret, got.body, ts, None, now)
        resigned = webhook.sign(secret, int(ts) + 1, got.body)
        assert not webhook.verify(secret, got.body, ts, resigned, now)
        # The receiver's example in docs/notifications.md agrees (its clock is the real one,
        # so its tolerance is widened to reach the fake clock's timestamp).
        doc_verify = _documented_verify()
        head = {"X-Canopy-Timestamp": ts, "X-Canopy-Signature": sig}
        assert doc_verify(secret, got.body, head, tolerance=10**10)
        assert not doc_verify(secret, forged, head, tolerance=10**10)
        assert not doc_verify("another-secret-entirely", got.body, head, tolerance=10**10)
        assert not doc_verify(secret, got.body, head)  # a 2026 timestamp is stale now
    finally:
        await rx.stop()
        await p.close()


async def test_a_dead_delivery_blocks_only_its_subject_until_replayed(
    db_url: str, tmp_path: Path
) -> None:
    p = await notify_plane(db_url, tmp_path, CLOUDS, max_attempts=3)
    rx = Receiver()
    await rx.start()
    try:
        sub_id, _ = await subscribe(p, rx.url)
        bad, good = await _leases(p, 2)
        rx.failing.add(f"lease/{bad}")
        for _ in range(20):
            await _pass(p)
        [dead] = await deliveries(p, "dead")
        assert dead.subject == f"lease/{bad}" and dead.retries == 3
        assert dead.last_error and "HTTP 500" in dead.last_error
        # The good lease's events all arrived; the bad one's later events wait, in line.
        assert len(rx.subjects()[f"lease/{good}"]) == 3
        assert f"lease/{bad}" not in rx.subjects()
        waiting = await deliveries(p, "pending")
        assert [d.subject for d in waiting] == [f"lease/{bad}"] * 2
        assert await _pass(p) == 0  # nothing is tried while the dead one blocks them
        async with p.db.read() as s:
            listed = await subscriptions.deliveries(s, p.ctx, sub_id, status="dead")
        assert [d.id for d, _ in listed] == [dead.id]
        rx.failing.clear()
        async with p.db.session() as s:
            assert await subscriptions.replay(s, p.ctx, sub_id, None, p.clock.now()) == 1
        for _ in range(5):
            await _pass(p)
        assert not await deliveries(p, "pending") and not await deliveries(p, "dead")
        positions = rx.subjects()[f"lease/{bad}"]
        assert len(positions) == 3 and positions == sorted(positions)
    finally:
        await rx.stop()
        await p.close()


async def test_skipping_a_dead_delivery_lets_its_subject_move_on(
    db_url: str, tmp_path: Path
) -> None:
    p = await notify_plane(db_url, tmp_path, CLOUDS, max_attempts=1)
    rx = Receiver()
    await rx.start()
    try:
        sub_id, _ = await subscribe(p, rx.url)
        await _leases(p, 1)
        rx.status = 503
        await _pass(p)  # fan-out, then the first one dies at once
        assert len(await deliveries(p, "dead")) == 1
        rx.status = 200
        async with p.db.session() as s:
            assert await subscriptions.skip(s, p.ctx, sub_id, None, p.clock.now()) == 1
        for _ in range(4):
            await _pass(p)
        assert [len(v) for v in rx.subjects().values()] == [2]  # the two updates
        assert [d.status for d in await deliveries(p)] == ["skipped", "delivered", "delivered"]
    finally:
        await rx.stop()
        await p.close()


def _documented_verify() -> Any:
    doc = Path(__file__).resolve().parents[2] / "docs" / "notifications.md"
    [code] = [
        c for c in re.findall(r"```python\n(.*?)```", doc.read_text(), re.S) if "def verify" in c
    ]
    assert len(code.strip().splitlines()) <= 10
    scope: dict[str, Any] = {}
    exec(compile(code, str(doc), "exec"), scope)
    return scope["verify"]
