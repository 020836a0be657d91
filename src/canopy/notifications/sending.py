"""Sending deliveries: lease the due ones that are first in line, send, record the outcome.

A delivery is first in line when no earlier delivery of the same subscription and subject
is pending or dead, so each subscription gets each subject's events in outbox order and a
dead one holds back only its own subject. Deliveries are leased rows like any other
controller's (several workers share them; the heartbeat renews the ones in flight); the
outcome is written to the row, which is the whole state: a worker that dies mid-send
leaves the delivery pending, and the next worker sends it again (at least once).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

import httpx
from sqlalchemy import ColumnElement, and_, exists, select, update
from sqlalchemy.orm import aliased

from canopy.controllers.runtime import Runtime
from canopy.credentials import Vault, vault
from canopy.notifications import amqp, targets, webhook
from canopy.notifications.subscriptions import Sealed
from canopy.store.leases import due, lease_rows, unleased
from canopy.store.models import Delivery, OutboxEvent, Subscription

log = logging.getLogger("canopy.notifications")

_Earlier = aliased(Delivery)


def first_in_line() -> list[ColumnElement[bool]]:
    """The conditions of a delivery that may be sent now (besides being due and unleased)."""
    earlier = exists().where(
        _Earlier.subscription_id == Delivery.subscription_id,
        _Earlier.subject == Delivery.subject,
        _Earlier.outbox_id < Delivery.outbox_id,
        _Earlier.status.in_(("pending", "dead")),
    )
    enabled = exists().where(Subscription.id == Delivery.subscription_id, Subscription.enabled)
    return [Delivery.status == "pending", enabled, ~earlier]


class Sender:
    """The delivery half of the notifications controller."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.conf = rt.settings.notifications
        self._vault: Vault | None = None
        self._client: httpx.AsyncClient | None = None
        self.publisher = amqp.Publisher(self.conf.timeout_seconds)
        self._slots = asyncio.Semaphore(self.conf.concurrency)

    @property
    def vault(self) -> Vault:
        if self._vault is None:
            self._vault = vault(self.rt.settings.secret_key, self.rt.settings.data_path)
        return self._vault

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self.conf.timeout_seconds, follow_redirects=False, trust_env=False
            )
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        await self.publisher.close()

    async def run_once(self) -> int:
        """Send every delivery that is due and first in line; returns how many were tried."""
        rt = self.rt
        now = rt.clock.now()
        keeper = rt.leases(Delivery)
        where = [*first_in_line(), due(Delivery, now)]
        async with rt.db.read() as s:  # nothing to send costs no write transaction
            q = select(Delivery.id).where(*where, unleased(Delivery, rt.lease_now())).limit(1)
            if (await s.execute(q)).first() is None:
                return 0
        async with rt.db.session() as s:
            rows = await lease_rows(
                s,
                Delivery,
                where=where,
                worker=rt.worker_id,
                now=rt.lease_now(),
                lease_seconds=rt.lease_seconds,
                limit=self.conf.batch_size,
                order_by=[Delivery.outbox_id],
                exclude=keeper.keys(),
            )
            if not rows:
                return 0
            sent_at = asyncio.get_running_loop().time()
            at = rt.lease_now()
            found = await s.execute(
                select(Delivery.id, OutboxEvent, Subscription)
                .join(OutboxEvent, OutboxEvent.id == Delivery.outbox_id)
                .join(Subscription, Subscription.id == Delivery.subscription_id)
                .where(Delivery.id.in_([d.id for d in rows]))
            )
            work = {did: (event, sub) for did, event, sub in found}
            attempts = {d.id: d.retries for d in rows}
        holds = {did: keeper.hold(did, renewed=sent_at, at=at) for did in work}
        try:
            await asyncio.gather(
                *(self._one(did, attempts[did], event, sub) for did, (event, sub) in work.items())
            )
        finally:
            for h in holds.values():
                keeper.drop(h)
        return len(work)

    async def _one(self, did: int, tried: int, event: OutboxEvent, sub: Subscription) -> None:
        async with self._slots:
            try:
                await self._send(did, event, sub)
            except (webhook.DeliveryFailed, targets.Refused) as e:
                await self._failed(did, tried + 1, str(e))
            except Exception as e:  # a bug or a broken key must not stop the others
                log.exception("delivery %s: unexpected error", did)
                await self._failed(did, tried + 1, f"{type(e).__name__}")
            else:
                await self._delivered(did, tried + 1)

    async def _send(self, did: int, event: OutboxEvent, sub: Subscription) -> None:
        allowed = self.conf.allowed_webhook_hosts
        opened = Sealed.open(self.vault, sub.sealed)
        target = targets.parse(sub.kind, sub.url, allowed)
        await asyncio.wait_for(
            targets.check(target.host, target.port, allowed), self.conf.timeout_seconds
        )
        if sub.kind == "webhook":
            content = webhook.body(event)
            stamp = int(self.rt.clock.now().timestamp())
            head = webhook.headers(opened.secret, stamp, content, did)
            await webhook.post(self.client, sub.url, content, head)
        else:
            await self.publisher.publish(
                sub.id,
                targets.with_password(sub.url, opened.password),
                sub.exchange or amqp.DEFAULT_EXCHANGE,
                amqp.routing_key(event.event_type, sub.routing_key),
                event,
                opened.password,
            )

    async def _delivered(self, did: int, attempts: int) -> None:
        now = self.rt.clock.now()
        async with self.rt.db.session() as s:
            # Whoever holds it now: it was delivered (a later holder may send it again).
            await s.execute(
                update(Delivery)
                .where(Delivery.id == did, Delivery.status == "pending")
                .values(
                    status="delivered",
                    delivered_at=now,
                    updated_at=now,
                    retries=attempts,
                    last_error=None,
                    next_attempt_at=None,
                    claimed_by=None,
                    claim_expires_at=None,
                )
            )
        self.rt.notify("notifications")  # the next of its subject may go now

    async def _failed(self, did: int, attempts: int, error: str) -> None:
        now = self.rt.clock.now()
        dead = attempts >= self.conf.max_attempts
        when = None if dead else now + timedelta(seconds=self.backoff(attempts))
        log.info("delivery %s failed (attempt %d): %s", did, attempts, error)
        async with self.rt.db.session() as s:
            await s.execute(
                update(Delivery)
                .where(
                    and_(
                        Delivery.id == did,
                        Delivery.status == "pending",
                        Delivery.claimed_by == self.rt.worker_id,
                    )
                )
                .values(
                    status="dead" if dead else "pending",
                    retries=attempts,
                    last_error=error[:1000],
                    next_attempt_at=when,
                    updated_at=now,
                    claimed_by=None,
                    claim_expires_at=None,
                )
            )

    def backoff(self, attempts: int) -> float:
        """Seconds before attempt `attempts + 1`: base * 2^(attempts-1), capped, jittered."""
        c = self.conf
        delay = min(c.backoff_max_seconds, c.backoff_base_seconds * 2.0 ** min(attempts - 1, 30))
        return delay * (0.5 + self.rt.rng.random() / 2)

    async def next_due(self, s_now: datetime) -> datetime | None:
        """When the earliest pending delivery may be tried (None: none pending)."""
        async with self.rt.db.read() as s:
            at: datetime | None = await s.scalar(
                select(Delivery.next_attempt_at)
                .where(
                    Delivery.status == "pending",
                    Delivery.next_attempt_at > s_now,
                    exists().where(
                        Subscription.id == Delivery.subscription_id, Subscription.enabled
                    ),
                )
                .order_by(Delivery.next_attempt_at)
                .limit(1)
            )
        return at
