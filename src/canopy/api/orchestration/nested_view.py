"""`GET .../resources?nested_depth=N`: a stack's resources with those of its nested stacks
(and, through `with_descendants`, `GET .../events?nested_depth=N`: their events).

Each nested resource carries `parent_resource` (the resource of the parent stack it belongs
to) and links to its own stack, as Heat shows them; a resource that is a nested stack links
to it with `rel: nested`. The depth is capped at Heat's max_nested_stack_depth.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.api.orchestration.common import stack_url
from canopy.api.orchestration.views import required_by, resource_view
from canopy.config import Settings
from canopy.domain.errors import InvalidRequest
from canopy.orchestration.nesting import MAX_DEPTH
from canopy.orchestration.states import Desired
from canopy.store.models import Stack, StackResource


def nested_depth(raw: str | None) -> int:
    """The `nested_depth` query parameter (0 if absent), capped at MAX_DEPTH."""
    if raw is None or raw == "":
        return 0
    try:
        depth = int(raw)
    except ValueError:
        raise InvalidRequest("nested_depth must be a whole number.") from None
    if depth < 0:
        raise InvalidRequest("nested_depth must not be negative.")
    return min(depth, MAX_DEPTH)


async def _children(s: AsyncSession, stack: Stack) -> dict[str, Stack]:
    q = select(Stack).where(Stack.owner_id == stack.id, Stack.deleted.is_(False))
    return {k.id: k for k in (await s.execute(q)).scalars()}


async def with_descendants(s: AsyncSession, stack: Stack, depth: int) -> dict[str, Stack]:
    """`stack` and its nested stacks down to `depth` levels below it, by id (one query
    a level; a tree's size is bounded by the resource limit over the whole tree)."""
    out = {stack.id: stack}
    level = [stack.id]
    for _ in range(depth):
        if not level:
            break
        q = select(Stack).where(Stack.owner_id.in_(level), Stack.deleted.is_(False))
        kids = list((await s.execute(q)).scalars())
        out.update((k.id, k) for k in kids)
        level = [k.id for k in kids]
    return out


async def present_rows(s: AsyncSession, stack: Stack) -> list[StackResource]:
    """The stack's current resources (not those on their way out), oldest first."""
    q = select(StackResource).where(
        StackResource.stack_id == stack.id, StackResource.desired == Desired.PRESENT
    )
    return list(
        (await s.execute(q.order_by(StackResource.created_at, StackResource.name))).scalars()
    )


async def link_nested(
    request: Request,
    settings: Settings,
    s: AsyncSession,
    stack: Stack,
    items: list[dict[str, Any]],
) -> dict[str, Stack]:
    """Add a `nested` link to each item that is a nested stack; the children by id."""
    kids = await _children(s, stack)
    for item in items:
        child = kids.get(item["physical_resource_id"])
        if child is not None:
            item["links"].append({"href": stack_url(request, settings, child), "rel": "nested"})
    return kids


async def nested_items(
    request: Request,
    settings: Settings,
    s: AsyncSession,
    stack: Stack,
    items: list[dict[str, Any]],
    depth: int,
) -> list[dict[str, Any]]:
    """The resources of `stack`'s nested stacks, `depth` levels down (items: its own)."""
    kids = await link_nested(request, settings, s, stack, items)
    if depth <= 0:
        return []
    out: list[dict[str, Any]] = []
    for item in items:
        child = kids.get(item["physical_resource_id"])
        if child is None:
            continue
        rows = await present_rows(s, child)
        needed = required_by(rows)
        href = stack_url(request, settings, child)
        own = [resource_view(r, href, needed[r.name]) for r in rows]
        for entry in own:
            entry["parent_resource"] = item["resource_name"]
        out += own
        out += await nested_items(request, settings, s, child, own, depth - 1)
    return out
