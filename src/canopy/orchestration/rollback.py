"""Rollback: what a stack does when a create or update fails and it did not disable it.

A failed create rolls back by deleting everything it made (ROLLBACK_COMPLETE leaves an
empty stack, as in Heat). A failed update rolls back to the template, files, environment
and parameters it replaced (kept in `stack.previous`): the engine walks that template
forward like an update, so a resource the update replaced comes back as the very row it
was (it is still there: replaced resources are only deleted once an update completes), a
resource changed in place is changed back, one the update added is deleted, and the
resources the rollback no longer needs are cleaned up. `cancel_update` is the same rollback,
started by the user while the update is still going.

A failed adopt (with rollback enabled) rolls back as Heat's adopt rollback does: the stack
lets go of everything it adopted, as an abandon would, and deletes nothing. The adopted
rows are marked retained (deletion_policy.py) and walked backwards like a create's
rollback, so the servers stay ordinary servers of the project and the stack ends
ROLLBACK_COMPLETE and empty. A resource whose adopt failed already holds nothing
(resources/adopt.py `let_go`).

Which kind of rollback a ROLLBACK stack is doing is read from `stack.previous`: set (the
template being rolled back from) for an update's, None for a create's or an adopt's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.orchestration import deletion_policy
from canopy.orchestration.events import resource_event, stack_event
from canopy.orchestration.resources.adopt import let_go
from canopy.orchestration.states import Action, Desired, Status
from canopy.store.models import Stack, StackResource


def snapshot(stack: Stack) -> dict[str, Any]:
    """What an update replaces, to roll back to."""
    return {
        "template": stack.template,
        "files": stack.files,
        "environment": stack.environment,
        "parameters": stack.parameters,
    }


def can_roll_back(action: Action, previous: dict[str, Any] | None) -> bool:
    """Whether a stack in `action` has something to roll back to."""
    return action in (Action.CREATE, Action.ADOPT) or (
        action is Action.UPDATE and previous is not None
    )


async def stop_all(
    s: AsyncSession, stack: Stack, now: datetime, reason: str
) -> list[StackResource]:
    """Mark every row of the stack still in progress (a group's members included) FAILED;
    one that was being adopted lets go of its server (resources/adopt.py `let_go`). The
    stack's rows are returned."""
    rows = list(
        (await s.execute(select(StackResource).where(StackResource.stack_id == stack.id))).scalars()
    )
    for row in rows:
        if row.status == Status.IN_PROGRESS:
            if row.action == Action.ADOPT:
                let_go(row)
            row.status = Status.FAILED
            row.status_reason = reason
            row.updated_at = now
            resource_event(s, stack, row, reason, now)
    return rows


async def start_rollback(s: AsyncSession, stack: Stack, now: datetime, reason: str) -> None:
    """Turn a failed (or cancelled) CREATE, ADOPT or UPDATE into a ROLLBACK, due now."""
    assert can_roll_back(Action(stack.action), stack.previous)
    # Whatever was still going stops here; its resource is deleted if not wanted.
    rows = await stop_all(s, stack, now, reason)
    if stack.action == Action.UPDATE and stack.previous is not None:
        back = stack.previous
        stack.previous = snapshot(stack)
        stack.template = back["template"]
        stack.files = back["files"]
        stack.environment = back["environment"]
        stack.parameters = back["parameters"]
    else:
        adopted = stack.action == Action.ADOPT
        stack.previous = None
        for row in rows:
            row.desired = Desired.ABSENT
            if adopted:
                deletion_policy.keep(row)  # let go of, never deleted: the stack did not make it
            if row.action == Action.DELETE and row.status == Status.FAILED:
                row.action = Action.INIT  # tried again from the start
    stack.generation += 1
    stack.action = Action.ROLLBACK
    stack.status = Status.IN_PROGRESS
    stack.status_reason = "Stack ROLLBACK started"
    stack.action_started_at = now
    stack.next_attempt_at = now
    stack.retries = 0
    stack_event(s, stack, Action.ROLLBACK, Status.IN_PROGRESS, stack.status_reason, now)
