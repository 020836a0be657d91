"""Writing stack and resource events as things happen (in the step's transaction).

A step holds its events (`hold_events`) and writes them with one INSERT at its end
(`write_events`), in the order they happened: a step of 200 resources makes 200 to 400
events, and as ORM objects their construction and flush were a fifth of the step's CPU
(issue 11's wide stack). Nothing in a step reads its own events. A round of the walk writes
the events of the resources it began before it asks for their servers (walk.py), as the
events were flushed before when the servers' create read the flavors. Outside a step (the
API's create, update and delete) an event is added to the session as before.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.orchestration.states import STACK_TYPE
from canopy.store.models import Stack, StackEvent, StackResource

_HELD = "canopy.orchestration.events"  # the session's `info` key of the held events
_TABLE = cast(Table, StackEvent.__table__)


def hold_events(s: AsyncSession) -> None:
    """Hold the events of `s` from now on until `write_events`."""
    s.info.setdefault(_HELD, [])


async def write_events(s: AsyncSession, *, stop: bool = False) -> None:
    """Write the events held in `s`, in order, with one statement (and `stop` holding)."""
    held: list[dict[str, Any]] = s.info.pop(_HELD, [])
    if not stop:
        s.info[_HELD] = []
    if held:
        await s.execute(insert(_TABLE), held)  # Core: no ORM rows


def _add(s: AsyncSession, values: dict[str, Any]) -> None:
    held: list[dict[str, Any]] | None = s.info.get(_HELD)
    if held is None:
        s.add(StackEvent(**values))
    else:
        held.append(values)


def stack_event(
    s: AsyncSession, stack: Stack, action: str, status: str, reason: str, now: datetime
) -> None:
    """A stack-level event: what `openstack stack create --wait` watches for."""
    _add(
        s,
        {
            "id": str(uuid.uuid4()),
            "stack_id": stack.id,
            "resource_name": stack.name,
            "logical_resource_id": stack.name,
            "physical_resource_id": stack.id,
            "resource_type": STACK_TYPE,
            "action": action,
            "status": status,
            "status_reason": reason,
            "time": now,
        },
    )


def resource_event(s: AsyncSession, res: StackResource, reason: str, now: datetime) -> None:
    """An event for `res` in its current action and status."""
    _add(
        s,
        {
            "id": str(uuid.uuid4()),
            "stack_id": res.stack_id,
            "resource_name": res.name,
            "logical_resource_id": res.name,
            "physical_resource_id": res.physical_resource_id or "",
            "resource_type": res.type,
            "action": res.action,
            "status": res.status,
            "status_reason": reason,
            "time": now,
        },
    )
