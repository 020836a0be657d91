"""What happens to a lease's capacity and servers when it starts, ends or is deleted.

Each function runs inside the caller's transaction, with the lease rows locked; together
with that transaction's commit it is one idempotent step (running it again changes
nothing), which is what lets a crashed worker's step be finished by the next one. The
`*_many` forms do the same for a batch of leases in a few statements, whatever its size:
the lease controller steps every lease due in the same second in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.domain.context import RequestContext
from canopy.domain.states import DesiredState
from canopy.reservations import host_leases
from canopy.reservations.flavors import drop_flavors
from canopy.reservations.states import LeaseStatus, ReservationStatus
from canopy.services.servers import ServerService
from canopy.store import claim_counts
from canopy.store.claim_counts import Deltas
from canopy.store.models import Claim, Lease, Reservation, Server


async def reservations_of(s: AsyncSession, lease_id: str) -> list[Reservation]:
    return (await reservations_by_lease(s, [lease_id]))[lease_id]


async def reservations_by_lease(
    s: AsyncSession, lease_ids: Sequence[str]
) -> dict[str, list[Reservation]]:
    """The reservations of each lease (one query for all of them)."""
    out: dict[str, list[Reservation]] = {i: [] for i in lease_ids}
    if not lease_ids:
        return out
    rows = await s.execute(
        select(Reservation)
        .where(Reservation.lease_id.in_(list(lease_ids)))
        .order_by(Reservation.lease_id, Reservation.id)
    )
    for r in rows.scalars():
        out[r.lease_id].append(r)
    return out


async def settle(s: AsyncSession, reservations: Iterable[Reservation], now: datetime) -> None:
    """Count the reservations' claims in use now and stop counting those that are not,
    moving their clouds' counters by those claims alone (store/claim_counts.py)."""
    await claim_counts.settle_and_apply(s, [r.id for r in reservations], now)


def activate(lease: Lease, reservations: Sequence[Reservation], now: datetime) -> None:
    """The statuses of a lease that starts (its clouds' counters are the caller's)."""
    for r in reservations:
        r.status = ReservationStatus.ACTIVE
        r.updated_at = now
    lease.status = LeaseStatus.ACTIVE
    lease.updated_at = now


def terminate(lease: Lease, reservations: Sequence[Reservation], now: datetime) -> None:
    """The statuses of a lease that is over (its release is the caller's)."""
    for r in reservations:
        r.status = ReservationStatus.DELETED
        r.updated_at = now
    lease.status = LeaseStatus.TERMINATED
    lease.updated_at = now


async def start(s: AsyncSession, lease: Lease, now: datetime) -> None:
    """The lease becomes ACTIVE: its flavors are usable, its claims count as in use."""
    reservations = await reservations_of(s, lease.id)
    activate(lease, reservations, now)
    await settle(s, reservations, now)


async def servers_in(s: AsyncSession, reservation_ids: Sequence[str]) -> list[Server]:
    """The live servers booted into these reservations: with the reservation as flavor
    (an instance reservation) or with the hint `reservation=<id>` (a host reservation)."""
    if not reservation_ids:
        return []
    ids = list(reservation_ids)
    rows = await s.execute(
        select(Server)
        .where(
            or_(Server.flavor_id.in_(ids), Server.reservation_id.in_(ids)),
            Server.deleted.is_(False),
            Server.desired_state != DesiredState.DELETED,
        )
        .order_by(Server.id)
    )
    return list(rows.scalars())


async def release_many(
    s: AsyncSession,
    items: Sequence[tuple[Lease, Sequence[Reservation]]],
    servers: ServerService,
    now: datetime,
    *,
    moved: Deltas | None = None,
) -> dict[str, int]:
    """Delete the leases' servers and give back their capacity; servers deleted per lease.

    The servers are asked to be deleted (the power controller does it, like any delete,
    as its own fenced step per server: a slow cloud delays nobody's lease); the claims go
    at once, and the counters of the clouds they were on give back what those claims
    held (by the caller, once for a whole batch, when it passes `moved`: the counters'
    moves are added to it).
    """
    owner = {r.id: lease for lease, rs in items for r in rs}
    counts = {lease.id: 0 for lease, _ in items}
    if not owner:
        return counts
    ids = sorted(owner)
    for server in await servers_in(s, ids):
        lease = owner[server.reservation_id or server.flavor_id]
        ctx = RequestContext(project_id=lease.project_id, user_id=lease.user_id)
        await servers.delete(ctx, server.id, session=s)
        counts[lease.id] += 1
    given_back = await claim_counts.drop(s, Claim.reservation_id.in_(ids))
    await host_leases.release(s, ids)
    if moved is None:
        await claim_counts.apply(s, given_back)
    else:
        moved.merge(given_back)
    await drop_flavors(s, ids)
    return counts


async def release(
    s: AsyncSession,
    lease: Lease,
    reservations: Sequence[Reservation],
    servers: ServerService,
    now: datetime,
) -> int:
    """`release_many` for one lease."""
    return (await release_many(s, [(lease, reservations)], servers, now))[lease.id]


async def end(s: AsyncSession, lease: Lease, servers: ServerService, now: datetime) -> int:
    """The lease is over: servers deleted, capacity released, TERMINATED."""
    reservations = await reservations_of(s, lease.id)
    n = await release(s, lease, reservations, servers, now)
    terminate(lease, reservations, now)
    return n
