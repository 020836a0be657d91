"""Writing events: an outbox row added to the caller's transaction, nothing else.

`emit` only adds a row to the session: the event is committed with the change it announces
or rolled back with it, and costs the change no query. The helpers below are what the
services and controllers call, one line where the change is recorded.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.notifications import events
from canopy.store.models import Lease, OutboxEvent, Server
from canopy.store.server_extras import tags_of


def values(
    event_type: str, subject: str, project_id: str, payload: dict[str, Any], *, at: datetime
) -> dict[str, Any]:
    """An outbox row's values, for `emit` or for a Core INSERT of many (`emit_leases`, and
    orchestration/events.py's held events)."""
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "subject": subject,
        "project_id": project_id,
        "payload": payload,
        "created_at": at,
        "fanned_out": False,
    }


def emit(
    s: AsyncSession,
    event_type: str,
    subject: str,
    project_id: str,
    payload: dict[str, Any],
    *,
    at: datetime,
) -> OutboxEvent:
    """Add an event to the outbox in `s`'s transaction (committed iff it commits)."""
    row = OutboxEvent(**values(event_type, subject, project_id, payload, at=at))
    s.add(row)
    return row


async def emit_leases(s: AsyncSession, changed: list[tuple[str, Lease]], now: datetime) -> None:
    """`lease_changed` for many leases at once: one INSERT for all their events (a batch
    of due leases must cost a few statements, not one per lease). Written in list order,
    so ids grow in that order."""
    if not changed:
        return
    rows = [
        values(
            event_type,
            events.lease_subject(lease.id),
            lease.project_id,
            events.lease_payload(lease),
            at=now,
        )
        for event_type, lease in changed
    ]
    await s.execute(insert(OutboxEvent), rows)


def lease_changed(s: AsyncSession, event_type: str, lease: Lease, now: datetime) -> None:
    """A lease was created, updated or deleted, or one of its events ran."""
    emit(
        s,
        event_type,
        events.lease_subject(lease.id),
        lease.project_id,
        events.lease_payload(lease),
        at=now,
    )


def server_changed(s: AsyncSession, event_type: str, server: Server, now: datetime) -> None:
    emit(
        s,
        event_type,
        events.server_subject(server.id),
        server.project_id,
        events.server_payload(server),
        at=now,
    )


async def server_updated(
    s: AsyncSession,
    server: Server,
    now: datetime,
    *,
    tags: list[str] | None = None,
    old_name: str | None = None,
) -> None:
    """A user renamed the server or changed its metadata or tags (Nova's instance.update
    from its API), in that change's transaction. The payload also carries the tags, as
    Nova's versioned instance.update does (read here unless given), and Nova's
    `old_display_name` on a rename."""
    if tags is None:
        tags = (await tags_of(s, [server.id])).get(server.id, [])
    payload = {**events.server_payload(server), "tags": list(tags)}
    if old_name is not None and old_name != server.name:
        payload["old_display_name"] = old_name
    emit(
        s,
        events.SERVER_UPDATE,
        events.server_subject(server.id),
        server.project_id,
        payload,
        at=now,
    )


def server_failed(s: AsyncSession, server: Server, now: datetime) -> None:
    """A server went to ERROR: its create failed, or (once running) it broke."""
    kind = events.SERVER_CREATE_ERROR if server.launched_at is None else events.SERVER_UPDATE
    server_changed(s, kind, server, now)


async def servers_failed(s: AsyncSession, servers: list[Server], now: datetime) -> None:
    """`server_failed` for many servers at once: one INSERT of their events, in list order."""
    if not servers:
        return
    rows = [
        values(
            events.SERVER_CREATE_ERROR if server.launched_at is None else events.SERVER_UPDATE,
            events.server_subject(server.id),
            server.project_id,
            events.server_payload(server),
            at=now,
        )
        for server in servers
    ]
    await s.execute(insert(OutboxEvent), rows)


_OUTBOX = cast(Table, OutboxEvent.__table__)

# What `controllers.observe.apply_observation` says changed -> the event it is.
_OBSERVED = {
    "active": events.SERVER_CREATE_END,
    "stopped": events.SERVER_POWER_OFF_END,
    "stopped outside canopy": events.SERVER_POWER_OFF_END,
    "started outside canopy": events.SERVER_POWER_ON_END,
}


def server_observed(s: AsyncSession, server: Server, change: str | None, now: datetime) -> None:
    """A cloud's report changed the server's status (`change` as apply_observation says)."""
    if change == "error":
        server_failed(s, server, now)
    elif change is not None and change in _OBSERVED:
        server_changed(s, _OBSERVED[change], server, now)


def observed_type(server: Any, change: str | None) -> str | None:
    """The event `server_observed` sends for `change` (None: none), on a row or a row's
    plain columns (controllers/sync_rows.py)."""
    if change == "error":
        return events.SERVER_CREATE_ERROR if server.launched_at is None else events.SERVER_UPDATE
    if change is not None:
        return _OBSERVED.get(change)
    return None


async def servers_seen(
    s: AsyncSession, seen: Sequence[tuple[Any, str | None]], now: datetime
) -> None:
    """`server_observed` for many rows at once (each a row or its plain columns, with its
    change): one INSERT of their events, in list order."""
    rows = [
        values(
            kind, events.server_subject(row.id), row.project_id, events.server_payload(row), at=now
        )
        for row, change in seen
        if (kind := observed_type(row, change)) is not None
    ]
    if rows:  # Core, on the session's connection: no ORM bulk path for plain rows
        await (await s.connection()).execute(insert(_OUTBOX), rows)


# What an event's payload reads of a server (`events.server_payload`) and what
# `observed_type` reads to name the event: a plain row of these stands for the server.
_PAYLOAD_COLUMNS = (
    Server.id,
    Server.name,
    Server.project_id,
    Server.user_id,
    Server.status,
    Server.task_state,
    Server.flavor_id,
    Server.image_id,
    Server.cloud,
    Server.zone,
    Server.metadata_.label("metadata_"),
    Server.created_at,
    Server.launched_at,
    Server.terminated_at,
    Server.deleted,
    Server.fault_message,
)


async def servers_observed(s: AsyncSession, changes: dict[str, str | None], now: datetime) -> None:
    """As `server_observed`, for rows changed by Core statements (their payload's columns
    read back by id; one INSERT of their events, in id order)."""
    wanted = [sid for sid, change in changes.items() if change == "error" or change in _OBSERVED]
    if not wanted:
        return
    rows = await s.execute(
        select(*_PAYLOAD_COLUMNS).where(Server.id.in_(wanted)).order_by(Server.id)
    )
    await servers_seen(s, [(row, changes[row.id]) for row in rows], now)
