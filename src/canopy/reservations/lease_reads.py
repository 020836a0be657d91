"""Reading leases as the caller may see them, and the per-project name rule.

A lease is another project's business: a caller sees and changes their own project's
leases, a cloud admin anyone's; any other lease is "not found".
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.domain.context import RequestContext
from canopy.domain.errors import Conflict, NotFound
from canopy.store.models import Lease, LeaseEvent, Reservation


async def get_lease(
    s: AsyncSession, ctx: RequestContext, lease_id: str, *, lock: bool = False
) -> Lease:
    """The lease, if the caller may see it (locked for update when `lock`), else 404."""
    q = select(Lease).where(Lease.id == lease_id)
    if lock:
        q = q.with_for_update()
    lease = (await s.execute(q)).scalar_one_or_none()
    if lease is None or not (ctx.is_cloud_admin or lease.project_id == ctx.project_id):
        raise NotFound(f"Object with {{'id': '{lease_id[:64]}'}} not found")
    return lease


async def list_leases(s: AsyncSession, ctx: RequestContext) -> list[Lease]:
    """The caller's project's leases, oldest first."""
    q = select(Lease).where(Lease.project_id == ctx.project_id)
    return list((await s.execute(q.order_by(Lease.created_at, Lease.id))).scalars())


async def lease_details(
    s: AsyncSession, lease_ids: list[str]
) -> tuple[dict[str, list[Reservation]], dict[str, list[LeaseEvent]]]:
    """The reservations and the events of each lease (two queries for all of them)."""
    res: dict[str, list[Reservation]] = {i: [] for i in lease_ids}
    events: dict[str, list[LeaseEvent]] = {i: [] for i in lease_ids}
    if lease_ids:
        for r in (
            await s.execute(
                select(Reservation)
                .where(Reservation.lease_id.in_(lease_ids))
                .order_by(Reservation.created_at, Reservation.id)
            )
        ).scalars():
            res[r.lease_id].append(r)
        for e in (
            await s.execute(
                select(LeaseEvent)
                .where(LeaseEvent.lease_id.in_(lease_ids))
                .order_by(LeaseEvent.time, LeaseEvent.id)
            )
        ).scalars():
            events[e.lease_id].append(e)
    return res, events


async def name_free(s: AsyncSession, project_id: str, name: str) -> None:
    """Refuse (409) a lease name already taken in the project: Blazar's names are unique
    per project."""
    taken = await s.scalar(
        select(Lease.id).where(Lease.project_id == project_id, Lease.name == name)
    )
    if taken is not None:
        raise Conflict(f"A lease named {name!r:.80} already exists in this project.")
