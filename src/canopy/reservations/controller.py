"""Starts and ends leases on time: a due lease row is leased, stepped and released.

A lease's `next_attempt_at` is the time of its next event still to run. The loop wakes at
the earliest one (`next_due_in`), not on a fixed poll, takes every lease due by now (leased,
`SKIP LOCKED` on PostgreSQL, so several workers share them), and steps each in its own short
transaction: run its due events in time order, record when each ran, set the next due time
and let go of the row. A step only writes intent (statuses, claims, the servers to delete);
the deletes themselves are the power controller's, so a lease with a slow teardown never
delays the others due in the same second. A worker that dies mid-step rolls back; its
lease on the row runs out and the next worker runs the same step (level-triggered).
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.controllers.runtime import Runtime
from canopy.notifications.events import lease_event
from canopy.notifications.outbox import lease_changed
from canopy.reservations import lifecycle
from canopy.reservations.states import EventStatus, EventType, LeaseStatus
from canopy.services.servers import ServerService
from canopy.store.leases import lease_rows, unleased
from canopy.store.models import Lease, LeaseEvent

log = logging.getLogger("canopy.leases")

# Events at the same instant run in this order.
ORDER = {EventType.START: 0, EventType.BEFORE_END: 1, EventType.END: 2}


class LeaseController:
    """The lease loop of a worker."""

    name = "leases"

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.servers = ServerService(rt.db, rt.settings, rt.clock)
        self.next_due_at: datetime | None = None

    def next_due_in(self, now: datetime) -> float | None:
        """Seconds from `now` to the earliest event still to run, as of the last pass
        (None: none known; the API's wake starts a pass for a new lease)."""
        if self.next_due_at is None:
            return None
        return (self.next_due_at - now).total_seconds()

    def _earliest_query(self) -> Select[datetime | None]:
        # Rows another worker holds are its business; if it dies, the idle pass finds them.
        return select(func.min(Lease.next_attempt_at)).where(unleased(Lease, self.rt.lease_now()))

    async def _earliest(self) -> None:
        async with self.rt.db.read() as s:
            self.next_due_at = await s.scalar(self._earliest_query())

    async def run_once(self) -> int:
        """Step every lease due now; returns how many were stepped."""
        rt = self.rt
        now = rt.clock.now()
        due = Lease.next_attempt_at <= now
        async with rt.db.read() as s:
            found = await s.execute(
                select(Lease.id).where(due, unleased(Lease, rt.lease_now())).limit(1)
            )
            if found.first() is None:
                self.next_due_at = await s.scalar(self._earliest_query())
                return 0
        total = 0
        while True:  # batch after batch, until nothing due now is left untaken
            async with rt.db.session() as s:
                rows = await lease_rows(
                    s,
                    Lease,
                    where=[due],
                    worker=rt.worker_id,
                    now=rt.lease_now(),
                    lease_seconds=rt.lease_seconds,
                    limit=rt.settings.controllers.batch_size,
                    order_by=[Lease.next_attempt_at],
                )
                ids = [r.id for r in rows]
            stepped = 0
            for lease_id in ids:
                try:
                    async with rt.db.session() as s:
                        if await self._step(s, lease_id):
                            stepped += 1
                except Exception:
                    # Rolled back; the row's lease runs out and a later pass repeats it.
                    log.exception("lease %s: step failed", lease_id)
            total += len(ids)
            if stepped:
                rt.notify("power")  # servers of ended leases are waiting to be deleted
            if len(ids) < rt.settings.controllers.batch_size:
                break
        await self._earliest()
        return total

    async def _step(self, s: AsyncSession, lease_id: str) -> bool:
        """Run the lease's due events, if this worker still holds it (the fence)."""
        lease = (
            await s.execute(select(Lease).where(Lease.id == lease_id).with_for_update())
        ).scalar_one_or_none()
        if lease is None or lease.claimed_by != self.rt.worker_id:
            return False  # deleted meanwhile, or taken over after our lease ran out
        now = self.rt.clock.now()
        events = sorted(
            (
                await s.execute(
                    select(LeaseEvent).where(
                        LeaseEvent.lease_id == lease.id,
                        LeaseEvent.status == EventStatus.UNDONE,
                    )
                )
            ).scalars(),
            key=lambda e: (e.time, ORDER[EventType(e.event_type)]),
        )
        for event in events:
            if event.time > now:
                break
            await self._run(s, lease, event, now)
        left = [e.time for e in events if e.status == EventStatus.UNDONE]
        lease.next_attempt_at = min(left) if left else None
        lease.claimed_by = None
        lease.claim_expires_at = None
        return True

    async def _run(self, s: AsyncSession, lease: Lease, event: LeaseEvent, now: datetime) -> None:
        kind = EventType(event.event_type)
        if kind is EventType.START and lease.status == LeaseStatus.PENDING:
            await lifecycle.start(s, lease, now)
        elif kind is EventType.END and lease.status in (LeaseStatus.PENDING, LeaseStatus.ACTIVE):
            n = await lifecycle.end(s, lease, self.servers, now)
            log.info("lease %s ended: %d servers to delete", lease.id, n)
        # before_end_lease: Blazar's hook for "snapshot or warn before the end": it is
        # the notification below that subscribers act on.
        event.status = EventStatus.DONE
        event.done_at = now
        event.updated_at = now
        lease_changed(s, lease_event(kind.value), lease, now)
        late = (now - event.time).total_seconds()
        log.info("lease %s: %s done (%.3fs after its time)", lease.id, kind.value, late)
