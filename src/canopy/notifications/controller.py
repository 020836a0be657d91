"""The notifications controller: heads-ups, fan-out, delivery (one loop of a worker).

Each pass:

1. **Heads-up** (`[notifications] lease_heads_up_seconds` > 0): a pending lease starting
   within that many seconds, with no `lease.event.start_soon` written since it last
   changed, gets one, under its row lock (so it is always before its `start_lease`).
2. **Fan-out**: outbox events not yet fanned out become one delivery per matching
   subscription (a paused one's wait until it is resumed), in outbox order, by one worker
   at a time (the `notifications.fanout` job's row lock), so deliveries of a subject are
   always made in the order of its events.
3. **Delivery** (`sending.Sender`): due deliveries that are first in line are sent.

Old delivered and skipped deliveries, dead ones, pending ones due that long ago (paused or
held back), and events with no delivery left, are pruned after `retention_seconds`. The
loop sleeps until the earliest retry or heads-up is due.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, delete, exists, func, insert, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.controllers.runtime import Runtime
from canopy.notifications import events
from canopy.notifications.outbox import emit
from canopy.notifications.sending import Sender
from canopy.notifications.subscriptions import matches
from canopy.reservations.states import LeaseStatus
from canopy.store.leases import lease_job, unleased
from canopy.store.models import Delivery, Lease, OutboxEvent, Subscription

log = logging.getLogger("canopy.notifications")

FANOUT_JOB = "notifications.fanout"
PRUNE_EVERY_SECONDS = 3600.0
_OUTBOX = cast(Table, OutboxEvent.__table__)


class NotificationController:
    """The notifications loop of a worker."""

    name = "notifications"

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.conf = rt.settings.notifications
        self.sender = Sender(rt)
        self.next_due_at: datetime | None = None
        self._pruned_at: datetime | None = None

    def next_due_in(self, now: datetime) -> float | None:
        """Seconds from `now` to the next retry or heads-up known at the last pass."""
        if self.next_due_at is None:
            return None
        return (self.next_due_at - now).total_seconds()

    async def run_once(self) -> int:
        n = await self.heads_up()
        n += await self.fan_out()
        n += await self.sender.run_once()
        await self._prune()
        await self._earliest()
        return n

    async def close(self) -> None:
        await self.sender.close()

    # Heads-up -------------------------------------------------------------------------

    def _unannounced(self) -> Any:
        """No heads-up written for the lease since it last changed (its dates may move)."""
        return ~exists().where(
            OutboxEvent.subject == literal("lease/") + Lease.id,
            OutboxEvent.event_type == events.LEASE_START_SOON,
            OutboxEvent.created_at >= Lease.updated_at,
        )

    async def heads_up(self) -> int:
        ahead = self.conf.lease_heads_up_seconds
        if ahead <= 0:
            return 0
        now = self.rt.clock.now()
        where = [
            Lease.status == LeaseStatus.PENDING,
            Lease.start_at > now,
            Lease.start_at <= now + timedelta(seconds=ahead),
            self._unannounced(),
        ]
        async with self.rt.db.read() as s:
            if (await s.execute(select(Lease.id).where(*where).limit(1))).first() is None:
                return 0
        async with self.rt.db.session() as s:
            # Under the lease's row lock, as its events run: never after its start_lease.
            leases = (
                await s.execute(
                    select(Lease)
                    .where(*where)
                    .order_by(Lease.start_at, Lease.id)
                    .limit(self.conf.batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).scalars()
            n = 0
            for lease in leases:
                payload = events.lease_payload(lease)
                payload["seconds_to_start"] = (lease.start_at - now).total_seconds()
                subject = events.lease_subject(lease.id)
                emit(s, events.LEASE_START_SOON, subject, lease.project_id, payload, at=now)
                n += 1
        return n

    # Fan-out ---------------------------------------------------------------------------

    async def fan_out(self) -> int:
        """Make the deliveries of events not fanned out yet; returns the events done."""
        rt = self.rt
        async with rt.db.read() as s:
            waiting = await s.scalar(select(OutboxEvent.id).where(~OutboxEvent.fanned_out).limit(1))
        if waiting is None:
            return 0
        now = rt.clock.now()
        async with rt.db.session() as s:
            job = await lease_job(
                s,
                name=FANOUT_JOB,
                worker=rt.worker_id,
                now=now,
                lease_seconds=rt.lease_seconds,
                lease_now=rt.lease_now(),
                force=True,
            )
            if job is None:
                return 0  # another worker is fanning out right now
            n = await self._fan_out(s, now)
            job.claimed_by = None  # the row lock, held to the commit, was the point
            job.claim_expires_at = None
            job.last_run_at = now
            job.runs += 1
        if n:
            rt.notify("notifications")
        return n

    async def _fan_out(self, s: AsyncSession, now: datetime) -> int:
        # The batch (the oldest events not fanned out) is marked and read back by one
        # statement, rather than read and then marked by its ids (200 bound ids a pass:
        # a stack's step writes an event per resource). The subscriptions are read after
        # it, as before: one created meanwhile gets the next batch's events. A join with
        # the batch (UPDATE ... FROM), not `id IN (batch)`: SQLite weighs an IN list
        # against the table's statistics and, with statistics made while the outbox was
        # small, scanned the whole outbox to test each row against the list.
        batch = (
            select(_OUTBOX.c.id)
            .where(~_OUTBOX.c.fanned_out)
            .order_by(_OUTBOX.c.id)
            .limit(self.conf.batch_size)
            .subquery("batch")
        )
        found = await s.execute(
            update(_OUTBOX)
            .where(_OUTBOX.c.id == batch.c.id)
            .values(fanned_out=True)
            .returning(_OUTBOX.c.id, _OUTBOX.c.event_type, _OUTBOX.c.subject, _OUTBOX.c.project_id)
        )
        rows = sorted(found.all(), key=lambda r: r[0])  # RETURNING: in no set order
        if not rows:
            return 0
        subs = list(
            await s.execute(
                # Paused ones too: their deliveries wait (the sender skips them) until resumed.
                select(Subscription.id, Subscription.project_id, Subscription.event_types)
            )
        )
        made: list[dict[str, Any]] = []
        for oid, kind, subject, project in rows:
            for sid, scope, patterns in subs:
                if (scope is None or scope == project) and matches(patterns, kind):
                    made.append(
                        {
                            "subscription_id": sid,
                            "outbox_id": oid,
                            "subject": subject,
                            "status": "pending",
                            "retries": 0,
                            "next_attempt_at": now,
                            "created_at": now,
                            "updated_at": now,
                        }
                    )
        if made:
            await s.execute(insert(Delivery), made)
        return len(rows)

    # Housekeeping and timing -----------------------------------------------------------

    async def _prune(self) -> None:
        now = self.rt.clock.now()
        if self._pruned_at is not None and (now - self._pruned_at).total_seconds() < (
            PRUNE_EVERY_SECONDS
        ):
            return
        self._pruned_at = now
        cutoff = now - timedelta(seconds=self.conf.retention_seconds)
        async with self.rt.db.session() as s:
            await s.execute(
                delete(Delivery).where(
                    Delivery.status.in_(("delivered", "skipped")), Delivery.updated_at < cutoff
                )
            )
            # Dead ones nobody replayed or skipped, and pending ones that have been due that
            # long without going out (their subscription paused, or behind a dead one): given
            # up on, so a receiver gone for good does not grow the tables without bound.
            # A pending one between retries is never due that long ago (nor one in flight).
            await s.execute(
                delete(Delivery).where(
                    or_(
                        and_(Delivery.status == "dead", Delivery.updated_at < cutoff),
                        and_(
                            Delivery.status == "pending",
                            Delivery.next_attempt_at < cutoff,
                            Delivery.updated_at < cutoff,
                            unleased(Delivery, self.rt.lease_now()),
                        ),
                    )
                )
            )
            await s.execute(
                delete(OutboxEvent).where(
                    OutboxEvent.fanned_out,
                    OutboxEvent.created_at < cutoff,
                    ~exists().where(Delivery.outbox_id == OutboxEvent.id),
                )
            )

    async def _earliest(self) -> None:
        now = self.rt.clock.now()
        retry = await self.sender.next_due(now)
        heads_up = None
        ahead = self.conf.lease_heads_up_seconds
        if ahead > 0:
            async with self.rt.db.read() as s:
                start = await s.scalar(
                    select(func.min(Lease.start_at)).where(
                        Lease.status == LeaseStatus.PENDING,
                        Lease.start_at > now + timedelta(seconds=ahead),
                    )
                )
            if start is not None:
                heads_up = start - timedelta(seconds=ahead)
        known = [t for t in (retry, heads_up) if t is not None]
        self.next_due_at = min(known) if known else None
