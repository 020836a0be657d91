"""Starts and ends leases on time: the leases due now are stepped a batch at a time.

A lease's `next_attempt_at` is the time of its next event still to run. The loop wakes at
the earliest one (`next_due_in`), not on a fixed poll, and takes the leases due by now a
batch at a time: one transaction locks up to `batch_size` of them (`FOR UPDATE SKIP
LOCKED` on PostgreSQL, so several workers share them; SQLite has one writer), runs their
due events in time order, records when each ran and sets each lease's next due time. A
start or an end is pure database work (statuses, claims, counters, the servers to delete),
done for the whole batch in a few statements, so 200 leases due in the same second cost
a handful of transactions, not 200. The slow part of an end, deleting its servers on their
clouds, is the power controller's: each server is its own fenced step there, so a slow
cloud never delays a lease's start or end.

Crashes: the step is one transaction, so a worker that dies mid-step (kill -9, a lost
connection) leaves nothing behind; its row locks go with its connection and the next pass,
on any worker, runs the same step (level-triggered). A lease whose step fails on its own
is retried alone, after a backoff, so it cannot hold back the others in its batch.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.controllers.runtime import Runtime
from canopy.notifications.events import lease_event
from canopy.notifications.outbox import emit_leases
from canopy.reservations import lifecycle, ready
from canopy.reservations.states import EventStatus, EventType, LeaseStatus
from canopy.services.servers import ServerService
from canopy.store import claim_counts
from canopy.store.leases import unleased
from canopy.store.models import Lease, LeaseEvent

log = logging.getLogger("canopy.leases")

# Events at the same instant run in this order.
ORDER = {EventType.START: 0, EventType.BEFORE_END: 1, EventType.END: 2}
LIVE = (LeaseStatus.PENDING, LeaseStatus.ACTIVE)


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

    def _due(self, now: datetime, limit: int) -> Select[Lease]:
        return (
            select(Lease)
            .where(Lease.next_attempt_at <= now, unleased(Lease, self.rt.lease_now()))
            .order_by(Lease.next_attempt_at, Lease.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )

    async def run_once(self) -> int:
        """Step every lease due now; returns how many were stepped."""
        rt = self.rt
        now = rt.clock.now()
        async with rt.db.read() as s:  # idle passes never take SQLite's write lock
            found = await s.execute(
                select(Lease.id)
                .where(Lease.next_attempt_at <= now, unleased(Lease, rt.lease_now()))
                .limit(1)
            )
            if found.first() is None:
                self.next_due_at = await s.scalar(self._earliest_query())
                return 0
        size = rt.settings.controllers.batch_size
        total = 0
        failed: set[str] = set()  # stepped alone this pass: done, or backed off
        while True:  # batch after batch, until nothing due now is left untaken
            now = rt.clock.now()
            ids: list[str] = []
            try:
                async with rt.db.session() as s:
                    q = self._due(now, size)
                    if failed:
                        q = q.where(Lease.id.not_in(sorted(failed)))
                    rows = list((await s.execute(q)).scalars())
                    ids = [r.id for r in rows]
                    if rows:
                        await self._step(s, rows, now)
            except Exception:
                if not ids:
                    raise  # the database itself failed: the worker's loop backs off
                # Rolled back. One lease may be at fault: each is stepped alone instead.
                log.exception("leases: a batch of %d failed; stepping them one by one", len(ids))
                for lease_id in ids:
                    await self._step_alone(lease_id)
                failed.update(ids)
                total += len(ids)
                continue
            if not ids:
                break
            total += len(ids)
            # Servers of ended leases are waiting to be deleted, booted ones to be placed.
            rt.notify("power", "placement")
            if len(ids) < size:
                break
        await self._earliest()
        return total

    async def _step_alone(self, lease_id: str) -> None:
        """Step one lease in its own transaction; if that fails too, back it off."""
        rt = self.rt
        try:
            async with rt.db.session() as s:
                q = self._due(rt.clock.now(), 1).where(Lease.id == lease_id)
                lease = (await s.execute(q)).scalar_one_or_none()
                if lease is not None:
                    await self._step(s, [lease], rt.clock.now())
            rt.notify("power", "placement")
        except Exception:
            log.exception("lease %s: step failed; retried after a backoff", lease_id)
            async with rt.db.session() as s:
                row = await s.get(Lease, lease_id, with_for_update=True)
                if row is not None:
                    row.retries += 1
                    row.next_attempt_at = rt.later(rt.backoff(row.retries))

    async def _step(self, s: AsyncSession, leases: Sequence[Lease], now: datetime) -> None:
        """Run the due events of `leases` (locked by the caller), in one transaction."""
        ids = [lease.id for lease in leases]
        reservations = await lifecycle.reservations_by_lease(s, ids)
        pending: dict[str, list[LeaseEvent]] = {i: [] for i in ids}
        for e in (
            await s.execute(
                select(LeaseEvent).where(
                    LeaseEvent.lease_id.in_(ids), LeaseEvent.status == EventStatus.UNDONE
                )
            )
        ).scalars():
            pending[e.lease_id].append(e)
        started: list[Lease] = []
        ended: list[Lease] = []
        done: list[tuple[Lease, LeaseEvent]] = []
        for lease in leases:
            if (
                lease.status == LeaseStatus.PENDING
                and lease.boot_at is not None
                and lease.booted_at is None
                and lease.boot_at <= now
            ):
                await ready.boot_or_degrade(s, lease, self.servers, now)
            events = sorted(
                pending[lease.id], key=lambda e: (e.time, ORDER[EventType(e.event_type)])
            )
            mine = reservations[lease.id]
            for event in events:
                if event.time > now:
                    break
                kind = EventType(event.event_type)
                if kind is EventType.START and lease.status == LeaseStatus.PENDING:
                    lifecycle.activate(lease, mine, now)
                    started.append(lease)
                elif kind is EventType.END and lease.status in LIVE:
                    lifecycle.terminate(lease, mine, now)
                    ended.append(lease)
                # before_end_lease: Blazar's hook for "snapshot or warn before the end";
                # it is recorded and done (notifications announce it).
                event.status = EventStatus.DONE
                done.append((lease, event))
            left = [e.time for e in events if e.status == EventStatus.UNDONE]
            if lease.boot_at is not None and lease.booted_at is None:
                left.append(lease.boot_at)
            lease.next_attempt_at = min(left) if left else None
            lease.retries = 0
            lease.claimed_by = None
            lease.claim_expires_at = None
        moved = claim_counts.Deltas()
        deleted = await lifecycle.release_many(
            s,
            [(lease, reservations[lease.id]) for lease in ended],
            self.servers,
            now,
            moved=moved,
        )
        # The claims whose windows opened or closed (a boot's early claims, a start's,
        # the early claims a start ends): the counters move by those claims alone.
        rids = [r.id for lease in leases for r in reservations[lease.id]]
        moved.merge(await claim_counts.settle(s, rids, now))
        await claim_counts.apply(s, moved)
        # When the batch's work is done: its commit follows at once (lateness is honest).
        at = self.rt.clock.now()
        for lease, event in done:
            self._done(lease, event, at)
        # Announced in the batch's transaction: committed iff the events are.
        await emit_leases(s, [(lease_event(e.event_type), lease) for lease, e in done], at)
        for lease in ended:
            log.info("lease %s ended: %d servers to delete", lease.id, deleted[lease.id])

    def _done(self, lease: Lease, event: LeaseEvent, at: datetime) -> None:
        """Record that `event` of `lease` ran at `at`."""
        event.done_at = at
        event.updated_at = at
        late = (at - event.time).total_seconds()
        log.info("lease %s: %s done (%.3fs after its time)", lease.id, event.event_type, late)
