"""Heat's max_resources_per_stack counted over a stack's whole tree of nested stacks.

The tree is the root stack and every live stack below it (`owner_id`); its size is the
number of resource rows wanted there (`desired` present), group members included, as
Heat's count_total_resources counts the resources of every stack with that root.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.orchestration.states import Desired
from canopy.orchestration.template import limits
from canopy.store.models import Stack, StackResource

MAX_TREE_RESOURCES = limits.MAX_RESOURCES
# Heat's RequestLimitExceeded wrapping StackResourceLimitExceeded (a 400 in fault.py).
LIMIT_MESSAGE = "Request limit exceeded: Maximum resources per stack exceeded."
MAX_TREE_DEPTH = 64  # far past max_nested_stack_depth: a guard against a cycle of rows


async def root_id(s: AsyncSession, stack: Stack) -> str:
    """The id of the top-level stack above `stack` (itself when it is one)."""
    current, owner = stack.id, stack.owner_id
    for _ in range(MAX_TREE_DEPTH):
        if owner is None:
            return current
        current = owner
        owner = await s.scalar(select(Stack.owner_id).where(Stack.id == owner))
    return current


async def tree_stacks(s: AsyncSession, top: str) -> list[str]:
    """`top` and the ids of every live stack nested below it."""
    found, level = [top], [top]
    for _ in range(MAX_TREE_DEPTH):
        q = select(Stack.id).where(Stack.owner_id.in_(level), Stack.deleted.is_(False))
        level = list((await s.scalars(q)).all())
        if not level:
            break
        found += level
    return found


async def tree_total(s: AsyncSession, top: str) -> int:
    """How many resources the tree under `top` holds now (wanted rows, members included)."""
    q = select(func.count(StackResource.id)).where(
        StackResource.stack_id.in_(await tree_stacks(s, top)),
        StackResource.desired == Desired.PRESENT,
    )
    return int(await s.scalar(q) or 0)


async def member_size(s: AsyncSession, stack_id: str, member: str) -> int:
    """A group member's size: its own row and, for a nested stack, everything below it."""
    nested = await s.scalar(
        select(Stack.id).where(
            Stack.owner_id == stack_id,
            Stack.owner_resource == member,
            Stack.deleted.is_(False),
        )
    )
    return 1 + (await tree_total(s, nested) if nested is not None else 0)


# The property that sets an autoscaling group's size in a template, by type.
DESIRED = {
    "OS::Heat::AutoScalingGroup": "desired_capacity",
    "AWS::AutoScaling::AutoScalingGroup": "DesiredCapacity",
}


async def update_start(s: AsyncSession, stack: Stack) -> tuple[int, dict[str, tuple[int, Any]]]:
    """What an update of `stack` starts its count from: the resources of the rest of its
    root's tree (0 for a top-level stack), and its autoscaling groups' current sizes with
    the desired size they were made with (an update that keeps that keeps the size, which
    scaling may have changed)."""
    others = 0
    if stack.owner_id is not None:
        others = await tree_total(s, await root_id(s, stack)) - await tree_total(s, stack.id)
    rows = await s.scalars(
        select(StackResource).where(
            StackResource.stack_id == stack.id,
            StackResource.group_id.is_(None),
            StackResource.desired == Desired.PRESENT,
            StackResource.type.in_(tuple(DESIRED)),
        )
    )
    kept = {
        r.name: (
            len((r.data or {}).get("members") or []),
            (r.properties or {}).get(DESIRED[r.type]),
        )
        for r in rows
    }
    return others, kept
