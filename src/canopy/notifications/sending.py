"""Sending deliveries: lease the due ones that are first in line, send, record the outcome.

A delivery is first in line when no earlier delivery of the same subscription and subject
is pending or dead, so each subscription gets each subject's events in outbox order and a
dead one holds back only its own subject. Deliveries are leased rows like any other
controller's (several workers share them; the heartbeat renews the ones in flight); the
outcome is written to the row, which is the whole state: a worker that dies mid-send
leaves the delivery pending, and the next worker sends it again (at least once).

Sends run as tasks of their own. A pass waits for its sends at most `pass_wait_seconds`,
then moves on while they finish, their rows still held: a receiver that answers slowly (up
to `timeout_seconds`) never holds up the next pass, and it holds at most
`per_subscription` of the worker's `concurrency` slots, so other subscriptions' events keep
going out beside it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from datetime import datetime, timedelta

import httpx
from sqlalchemy import ColumnElement, and_, exists, select, update
from sqlalchemy.orm import aliased

from canopy.controllers.fencing import Hold
from canopy.controllers.runtime import Runtime
from canopy.credentials import Vault, vault
from canopy.notifications import amqp, targets, webhook
from canopy.notifications.subscriptions import Sealed
from canopy.store.leases import due, lease_rows, unleased
from canopy.store.models import Delivery, OutboxEvent, Subscription
from canopy.store.plans import rare

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
    # `rare`: nearly every row is delivered; after ANALYZE, SQLite averaged the statuses
    # and scanned the deliveries (or walked them in outbox order) at every pass.
    return [rare(Delivery.status == "pending"), enabled, ~earlier]


class Sender:
    """The delivery half of the notifications controller."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.conf = rt.settings.notifications
        self._vault: Vault | None = None
        self._client: httpx.AsyncClient | None = None
        self.publisher = amqp.Publisher(self.conf.timeout_seconds)
        # Sends in flight: their delivery ids, and per subscription how many.
        self._inflight: dict[int, asyncio.Task[None]] = {}
        self._busy: dict[str, int] = {}

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
        """Stop: sends in flight are cancelled (their rows stay pending, to be sent again)."""
        tasks = list(self._inflight.values())
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        await self.publisher.close()

    async def run_once(self) -> int:
        """Start sending what is due and first in line, as many as there are free slots;
        wait for those sends at most `pass_wait_seconds`. Returns how many were started."""
        rt = self.rt
        free = self.conf.concurrency - len(self._inflight)
        if free <= 0:
            return 0
        now = rt.clock.now()
        keeper = rt.leases(Delivery)
        full = [sid for sid, n in self._busy.items() if n >= self.conf.per_subscription]
        where = [*first_in_line(), due(Delivery, now)]
        if full:
            where.append(Delivery.subscription_id.not_in(full))
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
                limit=min(free, self.conf.batch_size),
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
            work: dict[int, tuple[OutboxEvent, Subscription]] = {}
            over: list[int] = []  # past its subscription's share: given back at once
            taking = dict(self._busy)
            for did, event, sub in sorted(found, key=lambda r: r[1].id):
                if taking.get(sub.id, 0) >= self.conf.per_subscription:
                    over.append(did)
                    continue
                taking[sub.id] = taking.get(sub.id, 0) + 1
                work[did] = (event, sub)
            if over:
                await s.execute(
                    update(Delivery)
                    .where(Delivery.id.in_(over))
                    .values(claimed_by=None, claim_expires_at=None)
                    .execution_options(synchronize_session=False)
                )
            attempts = {d.id: d.retries for d in rows}
        started: list[asyncio.Task[None]] = []
        for did, (event, sub) in work.items():
            hold = keeper.hold(did, renewed=sent_at, at=at)
            self._busy[sub.id] = self._busy.get(sub.id, 0) + 1
            task = asyncio.create_task(self._one(did, attempts[did], event, sub))
            self._inflight[did] = task
            task.add_done_callback(functools.partial(self._done, did, sub.id, hold))
            started.append(task)
        if started and self.conf.pass_wait_seconds > 0:
            await asyncio.wait(started, timeout=self.conf.pass_wait_seconds)
        return len(started)

    def _done(self, did: int, sub_id: str, hold: Hold, _task: asyncio.Task[None]) -> None:
        self._inflight.pop(did, None)
        left = self._busy.get(sub_id, 0) - 1
        if left > 0:
            self._busy[sub_id] = left
        else:
            self._busy.pop(sub_id, None)
        self.rt.leases(Delivery).drop(hold)

    async def _one(self, did: int, tried: int, event: OutboxEvent, sub: Subscription) -> None:
        try:
            await self._send(did, event, sub)
        except (webhook.DeliveryFailed, targets.Refused) as e:
            await self._failed(did, tried + 1, str(e))
        except asyncio.CancelledError:
            raise  # stopping: the row stays pending, its lease runs out
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
        self.rt.notify("notifications")  # its retry time is known now: the loop re-plans

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
