"""What canopy's own servers hold on a cloud, as the cloud may count it (the inventory's
share of a cloud: domain/share.py).

Canopy's use of a cloud is its claims in use now, which the cloud's counters cache (one
row). Most of it is surely counted by the cloud: servers at rest, booted before the pass
asked for the capacity. The rest is few: servers on their way (placed, being created,
booting, being deleted, failed) and reservations' claims (a reservation holds its room
whether or not its servers run). Only those are read, by the phase index, so a pass costs
the same at 10 servers and at 100,000 (an aggregate over every claim of the cloud took
0.8 s on SQLite at 100,000, on the event loop).

- a moving server is surely counted once it booted before `before` with no delete asked;
  counted or not when its create was sent (a create may be in flight; a quota counts a
  booting server at once, the hypervisors once it lands on one; one being deleted may be
  let go already); counted by no cloud when it is only placed;
- a reservation's claim in use is counted or not: the cloud counts the reserved servers
  that run, up to the claim.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.domain.states import DesiredState, Phase
from canopy.store.claims import Usage
from canopy.store.models import Claim, Cloud, Server
from canopy.store.plans import rare, unindexed

# Every phase but STEADY and DONE: a server at rest is surely counted, a deleted one holds
# no claim.
MOVING = tuple(p.value for p in Phase if p not in (Phase.STEADY, Phase.DONE))


async def own_on_cloud(s: AsyncSession, cloud: str, before: datetime) -> tuple[Usage, Usage]:
    """(what the cloud surely counts of canopy's use, what it may or may not count yet)."""
    row = await s.get(Cloud, cloud)
    if row is None:
        return Usage(), Usage()
    held = (row.vcpus_claimed, row.ram_mb_claimed, row.instances_claimed)
    sure = and_(
        Server.launched_at.is_not(None),
        Server.launched_at <= before,
        Server.desired_state != DesiredState.DELETED.value,
    )
    sent = or_(
        Server.create_requested_at.is_not(None),
        Server.remote_id.is_not(None),
        Server.launched_at.is_not(None),
    )
    amounts = (Claim.vcpus, Claim.ram_mb, Claim.instances)
    moving = (
        await s.execute(
            select(
                *(func.coalesce(func.sum(a), 0) for a in amounts),
                *(func.coalesce(func.sum(case((sure, a), else_=0)), 0) for a in amounts),
                *(func.coalesce(func.sum(case((sent, a), else_=0)), 0) for a in amounts),
            )
            .select_from(Server)
            .join(Claim, Claim.server_id == Server.id)
            # The phase index finds the few moving servers; the claims' cloud index would
            # visit every claim of the cloud (store/plans.py).
            .where(rare(Server.phase.in_(MOVING)), unindexed(Claim.cloud) == cloud)
        )
    ).one()
    reserved = (
        await s.execute(
            # The reservations' index: a reservation's claims are few beside the servers'.
            select(*(func.coalesce(func.sum(a), 0) for a in amounts)).where(
                rare(Claim.reservation_id.is_not(None)),
                unindexed(Claim.cloud) == cloud,
                Claim.starts_at <= before,
                or_(Claim.ends_at.is_(None), Claim.ends_at > before),
            )
        )
    ).one()
    m = [int(x) for x in moving]
    all_moving, sure_moving, sent_moving = m[0:3], m[3:6], m[6:9]
    res = [int(x) for x in reserved]
    surely = [
        max(0, h - a - r + s_)
        for h, a, r, s_ in zip(held, all_moving, res, sure_moving, strict=True)
    ]
    maybe = [max(0, sn - s_) + r for sn, s_, r in zip(sent_moving, sure_moving, res, strict=True)]
    return Usage(*surely), Usage(*maybe)
