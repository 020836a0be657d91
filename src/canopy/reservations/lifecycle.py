"""What happens to a lease's capacity and servers when it starts, ends or is deleted.

Each function runs inside the caller's transaction, with the lease row locked; together
with that transaction's commit it is one idempotent step (running it again changes
nothing), which is what lets a crashed worker's step be finished by the next one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.domain.context import RequestContext
from canopy.domain.states import DesiredState
from canopy.reservations.flavors import drop_flavor
from canopy.reservations.states import LeaseStatus, ReservationStatus
from canopy.services.servers import ServerService
from canopy.store.claims import recount
from canopy.store.models import Claim, Cloud, Lease, Reservation, Server


async def reservations_of(s: AsyncSession, lease_id: str) -> list[Reservation]:
    rows = await s.execute(
        select(Reservation).where(Reservation.lease_id == lease_id).order_by(Reservation.id)
    )
    return list(rows.scalars())


async def recount_clouds(s: AsyncSession, names: Sequence[str], now: datetime) -> None:
    """Lock `names` (in name order) and set their counters to the claims in use now."""
    if not names:
        return
    clouds = list(
        (
            await s.execute(
                select(Cloud)
                .where(Cloud.name.in_(sorted(set(names))))
                .order_by(Cloud.name)
                .with_for_update()
            )
        ).scalars()
    )
    await recount(s, clouds, now)


def held_clouds(reservations: Sequence[Reservation]) -> list[str]:
    return sorted({share["cloud"] for r in reservations for share in r.placement})


async def start(s: AsyncSession, lease: Lease, now: datetime) -> None:
    """The lease becomes ACTIVE: its flavors are usable, its claims count as in use."""
    reservations = await reservations_of(s, lease.id)
    for r in reservations:
        r.status = ReservationStatus.ACTIVE
        r.updated_at = now
    lease.status = LeaseStatus.ACTIVE
    lease.updated_at = now
    await recount_clouds(s, held_clouds(reservations), now)


async def servers_in(s: AsyncSession, reservation_ids: Sequence[str]) -> list[Server]:
    """The live servers booted into these reservations (their flavor is the reservation)."""
    if not reservation_ids:
        return []
    rows = await s.execute(
        select(Server).where(
            Server.flavor_id.in_(list(reservation_ids)),
            Server.deleted.is_(False),
            Server.desired_state != DesiredState.DELETED,
        )
    )
    return list(rows.scalars())


async def release(
    s: AsyncSession,
    lease: Lease,
    reservations: Sequence[Reservation],
    servers: ServerService,
    now: datetime,
) -> int:
    """Delete the lease's servers and give back its capacity; returns the servers deleted.

    The servers are asked to be deleted (the power controller does it, like any delete);
    the claims go at once, and the counters of the clouds they were on are recounted.
    """
    ctx = RequestContext(project_id=lease.project_id, user_id=lease.user_id)
    ids = [r.id for r in reservations]
    doomed = await servers_in(s, ids)
    for server in doomed:
        await servers.delete(ctx, server.id, session=s)
    if ids:
        await s.execute(delete(Claim).where(Claim.reservation_id.in_(ids)))
    await recount_clouds(s, held_clouds(reservations), now)
    for r in reservations:
        await drop_flavor(s, r.id)
    return len(doomed)


async def end(s: AsyncSession, lease: Lease, servers: ServerService, now: datetime) -> int:
    """The lease is over: servers deleted, capacity released, TERMINATED."""
    reservations = await reservations_of(s, lease.id)
    n = await release(s, lease, reservations, servers, now)
    for r in reservations:
        r.status = ReservationStatus.DELETED
        r.updated_at = now
    lease.status = LeaseStatus.TERMINATED
    lease.updated_at = now
    return n
