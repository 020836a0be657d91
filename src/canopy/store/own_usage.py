"""What canopy's own servers use on a cloud, as the cloud may count it (the inventory's
share of a cloud: domain/share.py).

Canopy's claims in use now are cached in the cloud's counters (one row): its servers'
claims and its reservations' (a lease's room, a host held for reservations). The cloud
counts servers, not claims: a reservation's room counts only as far as its servers run.
So canopy's own use, as the cloud counts it, is its servers: those with a claim (all but
a reservation's) and a reservation's, sized by their flavor. Most are surely counted (at
rest, or booted before the pass asked for the capacity); the rest are few, and read by
index: servers on their way (placed, being created, booting, changing power, being
deleted), by the phase index, and a reservation's servers, by the reservation index. A
pass costs the same at 10 servers and at 100,000 (a sum over every claim of the cloud
took 0.8 s on SQLite at 100,000, on the event loop).

- a server on its way is surely counted once it booted before `before` with no delete
  asked; counted or not when its create was sent (a create may be in flight; a quota
  counts a booting server at once, the hypervisors once it lands on one; one being
  deleted may be let go already); counted by no cloud when it is only placed;
- a reservation's claims are not canopy's use: the room they hold that no server uses is
  still free in the cloud. Canopy's share (total less others' use) is then exact, and the
  claims, counted by placement against that share, keep the room for the lease.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, case, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.domain.states import DesiredState, Phase
from canopy.store.claims import Usage
from canopy.store.models import Claim, Cloud, Flavor, Server
from canopy.store.plans import rare, unindexed

# Every phase of a server on its way. A server at rest (STEADY, or FAILED: broken where it
# runs, or gone with its claim released) is counted; a deleted one (DONE) holds no claim.
MOVING = tuple(p.value for p in Phase if p not in (Phase.STEADY, Phase.FAILED, Phase.DONE))


def _sums(before: datetime, vcpus: Any, ram_mb: Any, instances: Any) -> list[Any]:
    """all, surely counted and sent, for each of the three amounts."""
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
    amounts = (vcpus, ram_mb, instances)
    return [
        *(func.coalesce(func.sum(a), 0) for a in amounts),
        *(func.coalesce(func.sum(case((sure, a), else_=0)), 0) for a in amounts),
        *(func.coalesce(func.sum(case((sent, a), else_=0)), 0) for a in amounts),
    ]


def _split(row: Any) -> tuple[list[int], list[int], list[int]]:
    m = [int(x) for x in row]
    return m[0:3], m[3:6], m[6:9]


async def own_on_cloud(s: AsyncSession, cloud: str, before: datetime) -> tuple[Usage, Usage]:
    """(what the cloud surely counts of canopy's use, what it may or may not count yet)."""
    row = await s.get(Cloud, cloud)
    if row is None:
        return Usage(), Usage()
    held = (row.vcpus_claimed, row.ram_mb_claimed, row.instances_claimed)
    # The phase index finds the few servers on their way; the claims' cloud index would
    # visit every claim of the cloud (store/plans.py).
    moving: Select[Any] = (
        select(*_sums(before, Claim.vcpus, Claim.ram_mb, Claim.instances))
        .select_from(Server)
        .join(Claim, Claim.server_id == Server.id)
        .where(rare(Server.phase.in_(MOVING)), unindexed(Claim.cloud) == cloud)
    )
    all_moving, sure_moving, sent_moving = _split((await s.execute(moving)).one())
    # The reservations' claims (in the counters, not canopy's use), by their index.
    amounts = (Claim.vcpus, Claim.ram_mb, Claim.instances)
    reserved_claims = (
        await s.execute(
            select(*(func.coalesce(func.sum(a), 0) for a in amounts)).where(
                rare(Claim.reservation_id.is_not(None)),
                unindexed(Claim.cloud) == cloud,
                Claim.starts_at <= before,
                or_(Claim.ends_at.is_(None), Claim.ends_at > before),
            )
        )
    ).one()
    res = [int(x) for x in reserved_claims]
    # A reservation's servers hold no claim of their own: sized by their flavor.
    reserved_servers: Select[Any] = (
        select(*_sums(before, Flavor.vcpus, Flavor.ram_mb, literal(1)))
        .select_from(Server)
        .join(Flavor, Flavor.id == Server.flavor_id)
        .where(
            rare(Server.reservation_id.is_not(None)),
            unindexed(Server.cloud) == cloud,
            Server.phase != Phase.DONE.value,
        )
    )
    _, sure_res, sent_res = _split((await s.execute(reserved_servers)).one())
    surely = [
        max(0, h - r - a + s_ + sr)
        for h, r, a, s_, sr in zip(held, res, all_moving, sure_moving, sure_res, strict=True)
    ]
    maybe = [
        max(0, sn - s_) + max(0, snr - sr)
        for sn, s_, snr, sr in zip(sent_moving, sure_moving, sent_res, sure_res, strict=True)
    ]
    return Usage(*surely), Usage(*maybe)
