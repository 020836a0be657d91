"""Writing stack and resource events as things happen (in the step's transaction).

Each event goes two ways: to the stack's event list (StackEvent, what `openstack stack
event list` reads) and to the notification outbox (`orchestration.stack.*` with Heat's
types and payload, `orchestration.resource.*` canopy's own), in the same transaction, so
a notification is sent iff the change it announces committed.

A step holds its events (`hold_events`) and writes them at its end (`write_events`) with
one INSERT per table, in the order they happened: a step of 200 resources makes 200 to
400 events, and as ORM objects their construction and flush were a fifth of the step's CPU
(issue 11's wide stack). Nothing in a step reads its own events. A round of the walk writes
the events of the resources it began before it asks for their servers (walk.py), as the
events were flushed before when the servers' create read the flavors. Outside a step (the
API's create, update and delete) an event is added to the session as before.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.notifications import events as notes
from canopy.notifications import outbox
from canopy.orchestration.states import STACK_TYPE
from canopy.store.models import OutboxEvent, Stack, StackEvent, StackResource

_HELD = "canopy.orchestration.events"  # the session's `info` key of the held events
_TABLE = cast(Table, StackEvent.__table__)
_OUTBOX = cast(Table, OutboxEvent.__table__)


@dataclass
class _Held:
    """A step's events not yet written: the stack's, and their notifications."""

    events: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)


def hold_events(s: AsyncSession) -> None:
    """Hold the events of `s` from now on until `write_events`."""
    s.info.setdefault(_HELD, _Held())


async def write_events(s: AsyncSession, *, stop: bool = False) -> None:
    """Write the events held in `s`, in order, with one statement per table (and `stop`
    holding)."""
    held: _Held | None = s.info.pop(_HELD, None)
    if not stop:
        s.info[_HELD] = _Held()
    if held is None:
        return
    if held.events:  # Core: no ORM rows
        await s.execute(insert(_TABLE), held.events)
    if held.notes:
        await s.execute(insert(_OUTBOX), held.notes)


EventsMark = tuple[_Held, int, int] | None


def events_mark(s: AsyncSession) -> EventsMark:
    """Where the held events of `s` stand now (None: not held), for `undo_events`."""
    held: _Held | None = s.info.get(_HELD)
    return None if held is None else (held, len(held.events), len(held.notes))


def undo_events(s: AsyncSession, mark: EventsMark) -> None:
    """Forget the events held since `mark`, after a savepoint rolled back what was done
    since: also those a `write_events` since then wrote (in the savepoint) and let go of."""
    if mark is None:
        return  # not held: they were added to the session, which the rollback expunged
    held, events, notes = mark
    del held.events[events:]
    del held.notes[notes:]
    s.info[_HELD] = held


def _add(s: AsyncSession, event: dict[str, Any], note: dict[str, Any]) -> None:
    held: _Held | None = s.info.get(_HELD)
    if held is None:
        s.add(StackEvent(**event))
        s.add(OutboxEvent(**note))
    else:
        held.events.append(event)
        held.notes.append(note)


def _event(
    name: str, kind: str, physical: str, action: str, status: str, reason: str, now: datetime
) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "resource_name": name,
        "logical_resource_id": name,
        "physical_resource_id": physical,
        "resource_type": kind,
        "action": action,
        "status": status,
        "status_reason": reason,
        "time": now,
    }


def stack_event(
    s: AsyncSession, stack: Stack, action: str, status: str, reason: str, now: datetime
) -> None:
    """A stack-level event: what `openstack stack create --wait` watches for."""
    event = _event(stack.name, STACK_TYPE, stack.id, action, status, reason, now)
    event["stack_id"] = stack.id
    note = outbox.values(
        notes.stack_type(action, status),
        notes.stack_subject(stack.id),
        stack.project_id,
        notes.stack_payload(stack, action, status, reason),
        at=now,
    )
    _add(s, event, note)


def _resource(s: AsyncSession, stack: Stack, event: dict[str, Any]) -> None:
    event.setdefault("stack_id", stack.id)
    note = outbox.values(
        notes.resource_type(event["action"], event["status"]),
        notes.stack_subject(stack.id),
        stack.project_id,
        notes.resource_payload(stack, event),
        at=event["time"],
    )
    _add(s, event, note)


def resource_event(
    s: AsyncSession, stack: Stack, res: StackResource, reason: str, now: datetime
) -> None:
    """An event for `res` (a resource of `stack`) in its current action and status."""
    physical = res.physical_resource_id or ""
    event = _event(res.name, res.type, physical, res.action, res.status, reason, now)
    event["stack_id"] = res.stack_id  # the row's own, as ever (it is `stack`'s)
    _resource(s, stack, event)


def signal_event(
    s: AsyncSession,
    stack: Stack,
    name: str,
    res: StackResource | None,
    reason: str,
    now: datetime,
) -> None:
    """A signal sent to resource `name` of `stack` (`res`, if it exists): SIGNAL_COMPLETE."""
    physical, kind = ("", "") if res is None else (res.physical_resource_id, res.type)
    _resource(s, stack, _event(name, kind, physical, "SIGNAL", "COMPLETE", reason, now))
