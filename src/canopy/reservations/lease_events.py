"""A lease's three events (start, before-end, end) and when the lease is next due."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.reservations.states import BEFORE_END_DEFAULT_MINUTES, EventStatus, EventType
from canopy.store.models import Lease, LeaseEvent


def default_before_end(start: datetime, end: datetime) -> datetime:
    """Blazar's before-end moment: an hour before the end, never before the start."""
    return max(start, end - timedelta(minutes=BEFORE_END_DEFAULT_MINUTES))


def add_events(
    s: AsyncSession,
    lease_id: str,
    start: datetime,
    end: datetime,
    before_end: datetime | None,
    now: datetime,
) -> None:
    """A new lease's start, before-end and end events, all still to run."""
    before = before_end or default_before_end(start, end)
    for kind, at in (
        (EventType.START, start),
        (EventType.BEFORE_END, before),
        (EventType.END, end),
    ):
        s.add(
            LeaseEvent(
                id=str(uuid.uuid4()),
                lease_id=lease_id,
                event_type=kind,
                time=at,
                status=EventStatus.UNDONE,
                created_at=now,
                updated_at=now,
            )
        )


async def retime(
    s: AsyncSession,
    lease: Lease,
    start: datetime,
    end: datetime,
    before_end: datetime | None,
    now: datetime,
) -> None:
    """Move the events still to run to the lease's (new) window, and set when the lease
    is next due: its earliest undone event, or its early boot if that has not happened."""
    events = list(
        (await s.execute(select(LeaseEvent).where(LeaseEvent.lease_id == lease.id))).scalars()
    )
    before = before_end or default_before_end(start, end)
    times = {EventType.START: start, EventType.BEFORE_END: before, EventType.END: end}
    for e in events:
        if e.status == EventStatus.UNDONE and e.time != times[EventType(e.event_type)]:
            e.time = times[EventType(e.event_type)]
            e.updated_at = now
    pending = [e.time for e in events if e.status == EventStatus.UNDONE]
    if lease.boot_at is not None and lease.booted_at is None:
        pending.append(lease.boot_at)
    lease.next_attempt_at = min(pending) if pending else None
