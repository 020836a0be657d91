"""A stack's actions (`POST .../actions`) and abandon, in the request's transaction.

Each writes intent and returns; the orchestration controller does the work. Suspend,
resume and check need a stack that is not in the middle of something; cancel_update needs
an update in progress (and rolls it back; `cancel_without_rollback` stops it where it is).
Abandon returns the stack's data and forgets the stack without deleting its resources:
its servers stay, as ordinary servers of the project.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.domain.clock import Clock
from canopy.domain.errors import Conflict, InvalidRequest
from canopy.orchestration.abandoning import forget_stack, stack_data
from canopy.orchestration.events import resource_event, stack_event
from canopy.orchestration.nesting import begin_action
from canopy.orchestration.rollback import can_roll_back, start_rollback
from canopy.orchestration.states import Action, Status
from canopy.store.models import Stack, StackResource

ACTIONS = ("suspend", "resume", "check", "cancel_update", "cancel_without_rollback")


def parse_action(body: Any) -> str:
    """The one action a body names: `{"suspend": null}` and the like (Heat's messages)."""
    one_of = ": exactly one action must be given, one of: " + ", ".join(ACTIONS) + "."
    if not isinstance(body, Mapping) or not body:
        raise InvalidRequest("No action specified" + one_of)
    if len(body) > 1:
        raise InvalidRequest("Multiple actions specified" + one_of)
    [name] = body
    if name == "rollback":
        # Heat has no such action (nor heatclient a `stack rollback` command): a stack
        # rolls back only when a create or update fails, and only if it asked to.
        raise InvalidRequest(
            "Invalid action rollback specified: Heat rolls a stack back only when a create "
            "or update fails with rollback enabled (`openstack stack update --rollback "
            "enabled`); to return a finished stack to an earlier state, update it to that "
            "template, or cancel an update in progress (cancel_update)."
        )
    if name not in ACTIONS:
        raise InvalidRequest(f"Invalid action {str(name)[:64]} specified" + one_of)
    return str(name)


async def act(s: AsyncSession, stack: Stack, action: str, clock: Clock) -> None:
    """Start `action` on `stack` (locked by the caller)."""
    now = clock.now()
    state = f"({stack.action}, {stack.status})"
    if action in ("cancel_update", "cancel_without_rollback"):
        if stack.action != Action.UPDATE or stack.status != Status.IN_PROGRESS:
            raise Conflict(f"Cancelling update when stack is {state} is not supported.")
        if action == "cancel_update":
            if not can_roll_back(Action.UPDATE, stack.previous):
                raise Conflict("This update has nothing to roll back to.")
            await start_rollback(s, stack, now, "UPDATE cancelled: rolling back")
        else:
            await _stop(s, stack, now)
        return
    if stack.status == Status.IN_PROGRESS:
        raise Conflict(f"Stack {action} is not supported while the stack is {state}.")
    if stack.action == Action.DELETE:
        raise Conflict(f"Stack {action} is not supported on a stack that is {state}.")
    if action == "resume" and stack.action not in (Action.SUSPEND, Action.RESUME):
        raise Conflict(f"Resuming a stack that is {state} is not supported: suspend it first.")
    todo = {"suspend": Action.SUSPEND, "resume": Action.RESUME, "check": Action.CHECK}[action]
    begin_action(s, stack, todo, now)


async def _stop(s: AsyncSession, stack: Stack, now: Any) -> None:
    """End an update where it stands (UPDATE_FAILED); what was going is marked failed."""
    reason = "UPDATE cancelled"
    rows = (await s.execute(select(StackResource).where(StackResource.stack_id == stack.id))).all()
    for (row,) in rows:
        if row.status == Status.IN_PROGRESS:
            row.status = Status.FAILED
            row.status_reason = reason
            row.updated_at = now
            resource_event(s, stack, row, reason, now)
    stack.status = Status.FAILED
    stack.status_reason = "Stack UPDATE cancelled"
    stack.next_attempt_at = None
    stack.previous = None
    stack_event(s, stack, Action.UPDATE, Status.FAILED, stack.status_reason, now)


async def abandon(s: AsyncSession, stack: Stack, clock: Clock) -> dict[str, Any]:
    """The stack's data (Heat's abandon format); the stack is forgotten, its resources kept."""
    if stack.status == Status.IN_PROGRESS:
        raise Conflict(
            f"Abandoning a stack that is ({stack.action}, {stack.status}) is not supported: "
            "wait for it to finish or cancel it."
        )
    data = await stack_data(s, stack)
    await forget_stack(s, stack, clock.now())
    return data
