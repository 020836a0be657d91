"""AMQP: events arrive on the local RabbitMQ in the oslo.messaging envelope.

Under CI (CI=true) RabbitMQ is required; elsewhere, if it is not reachable, these tests are
skipped with one line saying so (as PostgreSQL's are, tests/conftest.py).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from sqlalchemy import select

from canopy.reservations.service import LeaseService
from canopy.store.models import Subscription
from tests.reservations.helpers import CLOUDS, body

from .helpers import deliveries, notify_plane, subscribe

AMQP_URL = os.environ.get("CANOPY_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


@pytest.fixture
async def broker() -> AsyncIterator[aio_pika.abc.AbstractConnection]:
    try:
        conn = await aio_pika.connect(AMQP_URL, timeout=5)
    except Exception as e:
        if os.environ.get("CI") == "true":
            pytest.fail(f"RabbitMQ is required under CI but not reachable: {e}")
        pytest.skip(f"RabbitMQ not reachable at {AMQP_URL}; its tests are skipped")
    try:
        yield conn
    finally:
        await conn.close()


async def _queue(
    conn: aio_pika.abc.AbstractConnection, exchange: str, key: str
) -> aio_pika.abc.AbstractQueue:
    ch = await conn.channel()
    ex = await ch.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=False)
    q = await ch.declare_queue("", exclusive=True)
    await q.bind(ex, key)
    return q


async def _drain(q: aio_pika.abc.AbstractQueue, n: int) -> list[dict[str, Any]]:
    out = []
    for _ in range(n):
        msg = await q.get(timeout=5)
        await msg.ack()
        out.append(json.loads(msg.body))
    assert await q.get(fail=False) is None
    return out


async def test_events_arrive_on_rabbitmq_in_the_oslo_envelope(
    broker: aio_pika.abc.AbstractConnection, db_url: str, tmp_path: Path
) -> None:
    exchange = f"canopy-test-{uuid.uuid4().hex[:8]}"
    q = await _queue(broker, exchange, "notifications.*")
    p = await notify_plane(db_url, tmp_path, CLOUDS)
    try:
        sub_id, secret = await subscribe(
            p, AMQP_URL, kind="amqp", exchange=exchange, event_types=("lease.*",)
        )
        assert secret is None
        async with p.db.read() as s:
            sub = await s.get(Subscription, sub_id)
            assert sub is not None
            assert sub.url == "amqp://guest@127.0.0.1:5672/"  # the password is sealed
        svc = LeaseService(p.settings, p.clock, p.service)
        t0 = p.clock.now()
        async with p.db.session() as s:
            lease = await svc.create(s, p.ctx, body("a", t0.replace(hour=3), t0.replace(hour=4)))
        async with p.db.session() as s:
            await svc.update(s, p.ctx, lease.id, {"name": "b"})
        for _ in range(3):
            await p.worker.notifications.run_once()
        assert [d.status for d in await deliveries(p)] == ["delivered", "delivered"]
        got = await _drain(q, 2)
        assert all(m["oslo.version"] == "2.0" for m in got)
        inner = [json.loads(m["oslo.message"]) for m in got]
        assert [m["event_type"] for m in inner] == ["lease.create", "lease.update"]
        first = inner[0]
        assert set(first) == {
            "message_id",
            "publisher_id",
            "event_type",
            "priority",
            "payload",
            "timestamp",
        }
        assert first["priority"] == "INFO"
        assert first["payload"]["lease_id"] == lease.id
        assert first["payload"]["name"] == "a" and inner[1]["payload"]["name"] == "b"
        assert first["timestamp"].startswith(t0.strftime("%Y-%m-%d %H:%M:%S"))
    finally:
        await p.close()


async def test_a_broker_that_refuses_the_login_is_retried_and_the_password_never_shown(
    broker: aio_pika.abc.AbstractConnection, db_url: str, tmp_path: Path
) -> None:
    p = await notify_plane(db_url, tmp_path, CLOUDS)
    try:
        url = "amqp://guest:not-the-password-xyz@127.0.0.1:5672/"
        await subscribe(p, url, kind="amqp")
        svc = LeaseService(p.settings, p.clock, p.service)
        t0 = p.clock.now()
        async with p.db.session() as s:
            await svc.create(s, p.ctx, body("a", t0.replace(hour=3), t0.replace(hour=4)))
        await p.worker.notifications.run_once()
        [d] = await deliveries(p)
        assert d.status == "pending" and d.retries == 1 and d.last_error
        assert "not-the-password-xyz" not in d.last_error
        async with p.db.read() as s:
            stored = (await s.execute(select(Subscription.url))).scalar_one()
        assert "not-the-password-xyz" not in stored
    finally:
        await p.close()
