"""Letting go of a stack's resources without deleting them: abandon, and an adopt's rollback.

The data is Heat's abandon format. As in Heat, a nested stack's entry is its child stack's
own data (the child's template and its resources), and a group's entry carries its
members' entries in `resources` by index (Heat's group is a nested stack of members named
"0", "1", ...), so an adopt of the data finds each member and each nested resource under
the resource that holds it (resources/adopt_tree.py).

Forgetting a stack forgets its nested stacks with it: a child left behind would still hold
its servers (an adopt would find them "already in a stack") and would be deleted by
nothing.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.orchestration.events import stack_event
from canopy.orchestration.resources.adopt import carried
from canopy.orchestration.resources.registry import is_nested, row_type
from canopy.orchestration.states import Action, Desired, Status
from canopy.store.models import Stack, StackResource

KEPT = "Stack abandoned: its resources were kept"


async def _rows(s: AsyncSession, stack_id: str) -> list[StackResource]:
    q = select(StackResource).where(StackResource.stack_id == stack_id)
    return list((await s.execute(q)).scalars())


async def _child(s: AsyncSession, row: StackResource, *, lock: bool = False) -> Stack | None:
    """The live child stack of a nested resource row; `lock`: locked (a child still
    walking its own adopt finishes its step first, and is then forgotten whole)."""
    if not row.physical_resource_id or not is_nested(row_type(row.type)):
        return None
    q = select(Stack).where(Stack.id == row.physical_resource_id)
    if lock:
        q = q.with_for_update()
    child = (await s.execute(q)).scalar_one_or_none()
    return child if child is not None and not child.deleted else None


async def stack_data(s: AsyncSession, stack: Stack) -> dict[str, Any]:
    """The stack's abandon data, its nested stacks and groups' members inside it."""
    rows = await _rows(s, stack.id)
    members: dict[str | None, list[StackResource]] = defaultdict(list)
    for r in rows:
        if r.desired == Desired.PRESENT:
            members[r.group_id].append(r)

    async def entry(r: StackResource) -> dict[str, Any]:
        child = await _child(s, r)
        if child is not None:
            return {**await stack_data(s, child), "type": r.type}  # Heat's: the child's data
        found: dict[str, Any] = {
            "name": r.name,
            "type": r.type,
            "action": r.action,
            "status": r.status,
            "resource_id": r.physical_resource_id or None,
            "resource_data": {**(r.data or {}), **carried(r)},
            "metadata": {},
            "properties": dict(r.properties or {}),
        }
        if r.id in members:
            # A member row is `<group>.<index>` (members.py): Heat's member is its index.
            found["resources"] = {m.name[len(r.name) + 1 :]: await entry(m) for m in members[r.id]}
        return found

    return {
        "name": stack.name,
        "id": stack.id,
        "action": stack.action,
        "status": stack.status,
        "template": stack.template,
        "files": stack.files,
        # Heat's data carries the parameters in the environment: an adopt reads them there.
        "environment": {
            **stack.environment,
            "parameters": {**(stack.environment.get("parameters") or {}), **stack.parameters},
        },
        "project_id": stack.project_id,
        "stack_user_project_id": stack.project_id,
        "resources": {r.name: await entry(r) for r in members[None]},
    }


async def forget_stack(s: AsyncSession, stack: Stack, now: datetime) -> None:
    """Forget `stack` and its nested stacks; every resource they made is kept."""
    for row in await _rows(s, stack.id):
        child = await _child(s, row, lock=True)
        if child is not None:
            await forget_stack(s, child, now)
    await s.execute(
        delete(StackResource)
        .where(StackResource.stack_id == stack.id)
        .execution_options(synchronize_session=False)
    )
    stack.action = Action.DELETE
    stack.status = Status.COMPLETE
    stack.status_reason = KEPT
    stack.next_attempt_at = None
    stack.previous = None
    stack.adopt_data = None
    stack.deleted = True
    stack.deleted_at = now
    stack_event(s, stack, Action.DELETE, Status.COMPLETE, KEPT, now)


async def forget_row(s: AsyncSession, row: StackResource, now: datetime) -> None:
    """What a row that is let go of holds beside itself is let go of too: a group's
    members, a nested resource's child stack (the row itself is the caller's)."""
    child = await _child(s, row, lock=True)
    if child is not None:
        await forget_stack(s, child, now)
    groups = [row.id]
    while groups:
        q = select(StackResource).where(
            StackResource.stack_id == row.stack_id, StackResource.group_id.in_(groups)
        )
        found = list((await s.execute(q)).scalars())
        groups = [m.id for m in found]
        for m in found:
            await s.delete(m)
