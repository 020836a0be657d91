"""Marking a resource unhealthy, or healthy again (Heat's `resource mark unhealthy`).

`mark_unhealthy: true` puts the resource in CHECK_FAILED with the reason given, unless it
is being deleted; the next stack update then replaces it, as it replaces any resource that
is not COMPLETE (walk.py). `false` turns a CHECK_FAILED resource back to CHECK_COMPLETE
and leaves any other state alone. Heat takes the stack's lock for it: while the stack is
in progress the engine owns its resources, so the mark is refused with a 409 then.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.domain.errors import Conflict, InvalidRequest, NotFound
from canopy.orchestration.events import resource_event
from canopy.orchestration.states import Action, Desired, Status
from canopy.store.models import Stack, StackResource

KEYS = ("mark_unhealthy", "resource_status_reason")
DEFAULT_REASON = "state changed by resource_mark_unhealthy api"
MAX_REASON = 1024  # Heat's column is unbounded; a reason is a sentence


def parse_mark(body: Any) -> tuple[bool, str]:
    """(unhealthy, reason) from the request body, as Heat's API reads it."""
    if not isinstance(body, Mapping):
        raise InvalidRequest("The request body must be a map.")
    extra = sorted(set(body) - set(KEYS))
    if extra:
        raise InvalidRequest(f"Invalid keys in resource mark unhealthy {extra}")
    if "mark_unhealthy" not in body:
        raise InvalidRequest("Missing mandatory (mark_unhealthy) key from mark unhealthy request")
    raw = body["mark_unhealthy"]
    if isinstance(raw, bool):
        unhealthy = raw
    elif isinstance(raw, str) and raw.lower() in ("true", "false"):
        unhealthy = raw.lower() == "true"
    else:
        raise InvalidRequest(
            f'Unrecognized value "{str(raw)[:64]}" for "mark_unhealthy", '
            "acceptable values are: true, false."
        )
    reason = body.get("resource_status_reason") or ""
    if not isinstance(reason, str):
        raise InvalidRequest("resource_status_reason must be a string.")
    if len(reason) > MAX_REASON:
        raise InvalidRequest(f"resource_status_reason must be at most {MAX_REASON} characters.")
    return unhealthy, reason


async def mark(
    s: AsyncSession, stack: Stack, name: str, unhealthy: bool, reason: str, now: datetime
) -> None:
    """Mark the resource called `name` (or with that physical id) of a locked stack."""
    if stack.status == Status.IN_PROGRESS:
        raise Conflict(f"Stack {stack.name} already has an action ({stack.action}) in progress.")
    present = select(StackResource).where(
        StackResource.stack_id == stack.id, StackResource.desired == Desired.PRESENT
    )
    row = (await s.execute(present.where(StackResource.name == name))).scalar_one_or_none()
    if row is None and name:
        by_id = present.where(StackResource.physical_resource_id == name)
        row = (await s.execute(by_id)).scalars().first()
    if row is None:
        raise NotFound(f"The Resource ({name[:255]}) could not be found.")
    reason = reason or DEFAULT_REASON
    if unhealthy:
        if row.action == Action.DELETE:
            return
        row.action, row.status = Action.CHECK, Status.FAILED
    elif (row.action, row.status) == (Action.CHECK, Status.FAILED):
        row.status = Status.COMPLETE
    else:
        return
    row.status_reason = reason
    row.updated_at = now
    resource_event(s, stack, row, reason, now)
