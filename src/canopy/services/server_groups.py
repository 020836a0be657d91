"""Nova server groups: a named placement policy over clouds, owned by a project.

The scheduler reads `Server.group_id` and the group's policy (canopy.scheduler): with each
cloud as a "host", anti-affinity spreads members over clouds and affinity keeps them on one.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.config import Settings
from canopy.domain.context import RequestContext
from canopy.domain.errors import InvalidRequest, NotFound, QuotaError
from canopy.services import quotas
from canopy.store.models import Server, ServerGroup

POLICIES = ("affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity")
HARD_POLICIES = ("affinity", "anti-affinity")  # all Nova accepts before 2.15
MAX_NAME = 255


def check_name(name: object) -> str:
    """Nova's rule for names: 1..255 printable characters, no surrounding whitespace."""
    if not isinstance(name, str):
        raise InvalidRequest(
            f"Invalid input for field/attribute name. Value: {name}. "
            f"{name!r} is not of type 'string'"
        )
    if not 1 <= len(name) <= MAX_NAME or name != name.strip() or not name.isprintable():
        raise InvalidRequest(
            f"Invalid input for field/attribute name. Value: {name[:80]}. An invalid 'name' "
            "value was provided. The name must be: 1 to 255 printable characters with no "
            "leading or trailing whitespace."
        )
    return name


async def create(
    s: AsyncSession, settings: Settings, ctx: RequestContext, name: str, policy: str, now: datetime
) -> ServerGroup:
    """A new group in the caller's project, within its `server_groups` quota."""
    if policy not in POLICIES:
        raise InvalidRequest(f"Invalid input for field/attribute policy. Value: {policy}.")
    await quotas.lock_project(s, ctx.project_id)
    limit = (await quotas.limits(s, settings, ctx.project_id))["server_groups"]
    if limit >= 0 and await quotas.server_group_count(s, ctx.project_id) + 1 > limit:
        raise QuotaError("Quota exceeded, too many server groups.")
    group = ServerGroup(
        id=str(uuid.uuid4()),
        project_id=ctx.project_id,
        user_id=ctx.user_id,
        name=name,
        policy=policy,
        created_at=now,
    )
    s.add(group)
    await s.flush()
    return group


async def get(s: AsyncSession, ctx: RequestContext, group_id: str) -> ServerGroup:
    """The group, if the caller may see it (its project's, or any for an admin)."""
    group = await s.get(ServerGroup, group_id) if quotas.could_be_id(group_id) else None
    if group is None or not (ctx.is_cloud_admin or group.project_id == ctx.project_id):
        raise NotFound(f"Instance group {group_id} could not be found.")
    return group


async def listing(
    s: AsyncSession,
    ctx: RequestContext,
    *,
    all_projects: bool = False,
    limit: int | None = None,
    offset: int = 0,
) -> Sequence[ServerGroup]:
    """The caller's project's groups (every project's for an admin asking for all), oldest
    first, as Nova lists them."""
    q = select(ServerGroup).order_by(ServerGroup.created_at, ServerGroup.id)
    if not (all_projects and ctx.is_cloud_admin):
        q = q.where(ServerGroup.project_id == ctx.project_id)
    if offset:
        q = q.offset(offset)
    if limit is not None:
        q = q.limit(limit)
    return list((await s.execute(q)).scalars())


async def members(s: AsyncSession, group_ids: Sequence[str]) -> dict[str, list[str]]:
    """The ids of the live servers in each group, oldest first."""
    out: dict[str, list[str]] = defaultdict(list)
    if not group_ids:
        return out
    rows = await s.execute(
        select(Server.group_id, Server.id)
        .where(Server.group_id.in_(group_ids), Server.deleted.is_(False))
        .order_by(Server.created_at, Server.id)
    )
    for group_id, server_id in rows:
        out[str(group_id)].append(str(server_id))
    return out


async def delete(s: AsyncSession, ctx: RequestContext, group_id: str) -> None:
    """Delete the group. Its servers stay where they are and leave the group (the foreign
    key sets their `group_id` to NULL)."""
    group = await get(s, ctx, group_id)
    await s.delete(group)
    await s.flush()
