"""What a group member costs, for scaling in: the servers it stands for, read in SQL.

A member may be a server (its own `server_id`), a nested stack (OS::Heat::Stack or a
template file: the servers of its child stack, and of that stack's own nested stacks and
groups, at any depth) or a group (its members' servers). One recursive query walks every
member's tree at once: from a row to its group's members (same stack, `group_id`) and to
the top-level rows of the child stack it owns (`physical_resource_id` is the child's id).

A member's cost is (tier, price): the highest tier of its servers (a server not placed yet
counts as the highest of all, so it goes first), then the sum of their prices per hour
(what removing the member saves). A member with no server costs (0, 0).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from canopy.orchestration.states import Desired
from canopy.store.models import Claim, Cloud, Server, Stack, StackResource

UNPLACED_TIER = 1 << 30  # a server not placed yet: its member goes first


async def member_costs(
    session: AsyncSession, member_ids: Sequence[str]
) -> dict[str, tuple[int, int]]:
    """Member row id -> (tier, price per hour in micros) of the servers it stands for;
    members with no server are left out."""
    if not member_ids:
        return {}
    top = (
        select(
            StackResource.id.label("root"),
            StackResource.id.label("id"),
            StackResource.stack_id.label("stack_id"),
            StackResource.name.label("name"),
            StackResource.physical_resource_id.label("physical_id"),
            StackResource.server_id.label("server_id"),
        )
        .where(StackResource.id.in_(list(member_ids)))
        .cte("member_tree", recursive=True)
    )
    row = aliased(StackResource)
    child = aliased(Stack)
    below = (
        select(top.c.root, row.id, row.stack_id, row.name, row.physical_resource_id, row.server_id)
        .select_from(top)
        .outerjoin(
            child,
            and_(
                child.id == top.c.physical_id,
                child.owner_id == top.c.stack_id,
                child.owner_resource == top.c.name,
                child.deleted.is_(False),
            ),
        )
        .join(
            row,
            and_(
                row.desired == Desired.PRESENT,
                or_(
                    and_(row.stack_id == top.c.stack_id, row.group_id == top.c.id),
                    and_(row.stack_id == child.id, row.group_id.is_(None)),
                ),
            ),
        )
    )
    tree = top.union_all(below)
    tier = case(
        (or_(Server.cloud.is_(None), Cloud.tier.is_(None)), UNPLACED_TIER), else_=Cloud.tier
    )
    q = (
        select(
            tree.c.root,
            func.max(tier),
            func.coalesce(func.sum(Claim.price_per_hour_micros), 0),
        )
        .select_from(tree)
        .outerjoin(Server, Server.id == tree.c.server_id)
        .outerjoin(Cloud, Cloud.name == Server.cloud)
        .outerjoin(Claim, Claim.server_id == Server.id)
        .where(tree.c.server_id.is_not(None))
        .group_by(tree.c.root)
    )
    return {root: (int(t), int(price)) for root, t, price in (await session.execute(q)).all()}
