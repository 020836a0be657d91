"""The private flavor an instance reservation is used through: its id is the reservation's.

Blazar creates such a flavor in Nova; here it is a `flavors` row (not public) with one
mapping per cloud the reservation may run on, copied from the flavor each cloud runs the
reserved size as. Who may see and boot it (the lease's project, while the lease is
ACTIVE) is `usable_reservation`'s answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.reservations.capacity import Offer, Size
from canopy.reservations.states import LeaseStatus
from canopy.store.models import Flavor, FlavorMapping, Lease, Reservation, Server


def flavor_name(reservation_id: str) -> str:
    return f"reservation:{reservation_id}"


async def add_flavor(
    s: AsyncSession, reservation_id: str, size: Size, offered: dict[str, Offer], now: datetime
) -> None:
    """The reservation's flavor and its mappings (in the lease's create transaction)."""
    s.add(
        Flavor(
            id=reservation_id,
            name=size.flavor,
            vcpus=size.vcpus,
            ram_mb=size.ram_mb,
            disk_gb=size.disk_gb,
            is_public=False,
            created_at=now,
        )
    )
    await s.flush()
    if offered:
        await s.execute(
            insert(FlavorMapping),
            [
                {
                    "cloud": cloud,
                    "flavor_id": reservation_id,
                    "remote_flavor": o.remote_flavor,
                    "price_per_hour_micros": o.price_per_hour_micros,
                }
                for cloud, o in sorted(offered.items())
            ],
        )


async def drop_flavors(s: AsyncSession, reservation_ids: Sequence[str]) -> None:
    """Remove the reservations' flavors that no server row names any more (the others
    stay, hidden: servers still point at them while they are deleted)."""
    if not reservation_ids:
        return
    used = set(
        (
            await s.execute(
                select(Server.flavor_id)
                .where(Server.flavor_id.in_(list(reservation_ids)))
                .distinct()
            )
        ).scalars()
    )
    free = sorted(set(reservation_ids) - used)
    if free:
        await s.execute(delete(FlavorMapping).where(FlavorMapping.flavor_id.in_(free)))
        await s.execute(delete(Flavor).where(Flavor.id.in_(free)))


async def usable_reservation(
    s: AsyncSession, flavor_id: str, project_id: str
) -> tuple[Reservation, Lease] | None:
    """The reservation behind `flavor_id` if `project_id` may boot with it now."""
    row = (
        await s.execute(
            select(Reservation, Lease)
            .join(Lease, Lease.id == Reservation.lease_id)
            .where(Reservation.id == flavor_id)
        )
    ).one_or_none()
    if row is None:
        return None
    res, lease = row
    if lease.project_id != project_id or lease.status != LeaseStatus.ACTIVE:
        return None
    return res, lease
