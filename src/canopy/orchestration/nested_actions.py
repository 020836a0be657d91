"""Suspend, resume and check reaching nested stacks, as Heat's stack resources do.

A nested stack resource (OS::Heat::Stack, a template resource) is suspended, resumed or
checked by starting the same action on its child stack (`nesting.begin_action`: the child
goes SUSPEND_IN_PROGRESS and so on, with its own stack event) and waiting for the child to
finish it, the way a server resource waits on its server row: the child is walked by the
same engine, its own nested stacks in turn, at any depth, and the parent is due again as
soon as the child has answered (`nesting.child_answered`). The resource completes when the
child's action completes and fails with the child's reason when it fails.
"""

from __future__ import annotations

from sqlalchemy import select

from canopy.orchestration.nesting import begin_action
from canopy.orchestration.resources.base import Progress
from canopy.orchestration.resources.registry import is_nested, row_type
from canopy.orchestration.states import Action, Status
from canopy.orchestration.walk import Walk
from canopy.store.models import Stack, StackResource

_VERB = {Action.SUSPEND: "suspend", Action.RESUME: "resume", Action.CHECK: "check"}


def nested(row: StackResource) -> bool:
    """Whether `row` is a nested stack resource (its action is its child's)."""
    return is_nested(row_type(row.type))


async def _child(walk: Walk, row: StackResource, *, lock: bool = False) -> Stack | None:
    if not row.physical_resource_id:
        return None
    q = select(Stack).where(Stack.id == row.physical_resource_id)
    if lock:
        q = q.with_for_update()
    found = (await walk.step.session.execute(q)).scalar_one_or_none()
    return None if found is None or found.deleted else found


async def start_child(walk: Walk, row: StackResource, action: Action) -> Progress:
    """Start `action` on the child stack of the nested resource `row`; waiting on it, or
    a failure if there is no child to act on."""
    child = await _child(walk, row, lock=True)
    if child is None:
        return Progress.failure(f"Cannot {_VERB[action]} {row.name}, stack not created")
    if child.status == Status.IN_PROGRESS:
        return Progress.failure(
            f"Cannot {_VERB[action]} {row.name}: its stack is {child.action}_IN_PROGRESS"
        )
    begin_action(walk.step.session, child, action, walk.now)
    return Progress()


async def child_progress(walk: Walk, row: StackResource, action: Action) -> Progress:
    """How `action` is going on the child stack of the nested resource `row`."""
    child = await _child(walk, row)
    if child is None:
        return Progress.failure("The nested stack was deleted outside its parent.")
    if child.action != action:
        return Progress.failure(
            f"The nested stack is {child.action}_{child.status}, not in {action.value}."
        )
    if child.status == Status.IN_PROGRESS:
        return Progress()  # the child's answer wakes the parent (nesting.child_answered)
    if child.status == Status.FAILED:
        return Progress.failure(f"Nested stack {action.value} failed: {child.status_reason}")
    return Progress.complete()
