"""Canopy's extension to `stack show`: where the servers of a stack's tree went.

`resource show` says where one server went and why (its `canopy` attribute); `stack show`
sums that up over the stack and every stack nested below it (groups' members included), so
an operator sees at a glance how a stack spans the clouds: servers per cloud and zone with
the cloud's tier, cheapest tier first, and how many are still being placed. One grouped
query over the tree's server resources, after the tree's ids (one query per level).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.orchestration.states import Desired
from canopy.orchestration.tree_limit import tree_stacks
from canopy.store.models import Cloud, Server, StackResource


async def placement_summary(s: AsyncSession, stack_id: str) -> dict[str, Any]:
    """`{"servers": N, "unplaced": k, "placement": [{cloud, zone, tier, servers}, ...]}`."""
    q = (
        select(Server.cloud, Server.zone, Cloud.tier, func.count(Server.id))
        .select_from(StackResource)
        .join(Server, Server.id == StackResource.server_id)
        .outerjoin(Cloud, Cloud.name == Server.cloud)
        .where(
            StackResource.stack_id.in_(await tree_stacks(s, stack_id)),
            StackResource.desired == Desired.PRESENT,
            Server.deleted.is_(False),
        )
        .group_by(Server.cloud, Server.zone, Cloud.tier)
    )
    placed: list[dict[str, Any]] = []
    total = unplaced = 0
    for cloud, zone, tier, n in (await s.execute(q)).all():
        total += n
        if cloud is None:
            unplaced += n
            continue
        placed.append({"cloud": cloud, "zone": zone or cloud, "tier": tier, "servers": n})
    placed.sort(key=lambda p: (p["tier"] is None, p["tier"] or 0, p["cloud"], p["zone"]))
    return {"servers": total, "unplaced": unplaced, "placement": placed}
