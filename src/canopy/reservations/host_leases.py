"""Host reservations (Blazar's physical:host): which registered hosts a lease holds.

A host reservation holds between `min` and `max` registered, reservable hosts that match
its queries and that no other reservation holds at any instant of [start, end) (windows
are half-open, so one lease may end the instant the next begins). As Blazar does, it
takes as many as it can up to `max`, in host id order; fewer than `min` is a 409 and
nothing is written. The caller holds the cloud rows locked (`capacity.lock_clouds`);
the candidate hosts are locked too, so a host delete and a lease create never cross.
Changing a held reservation (new bounds, queries or window) is `host_update`'s.

A registered host is out of the ordinary pool for as long as it is registered (Blazar's
freepool; see reservations/hosts.py): its capacity is held by its own open-ended claim,
so a host reservation needs no claim of its own and the servers booted into it none
either.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.domain.errors import Conflict
from canopy.reservations import host_query
from canopy.reservations.dates import format_date
from canopy.store.models import Cloud, HostAllocation, Lease, ReservableHost, Reservation


def host_fields(h: ReservableHost) -> dict[str, Any]:
    """What a query may name about `h`: its own fields, then its extra capabilities."""
    fields: dict[str, Any] = dict(h.extra)
    fields.update(
        {
            "vcpus": h.vcpus,
            "memory_mb": h.memory_mb,
            "local_gb": h.local_gb,
            "hypervisor_type": h.hypervisor_type,
            "hypervisor_hostname": f"{h.cloud}:{h.host}",
            "service_name": h.host,
            "cloud": h.cloud,
            "availability_zone": h.zone or h.cloud,
        }
    )
    return fields


def summarize(r: Reservation, held: Sequence[ReservableHost]) -> None:
    """The reservation's amount, size and placement: the hosts it holds (by cloud)."""
    r.amount = len(held)
    r.vcpus = sum(h.vcpus for h in held)
    r.memory_mb = sum(h.memory_mb for h in held)
    r.disk_gb = sum(h.local_gb for h in held)
    r.placement = [
        {
            "cloud": cloud,
            "amount": sum(1 for h in held if h.cloud == cloud),
            "reason": "hosts " + ", ".join(h.host for h in held if h.cloud == cloud),
            "hosts": [h.id for h in held if h.cloud == cloud],
        }
        for cloud in sorted({h.cloud for h in held})
    ]


def _overlaps(start: datetime, end: datetime) -> Any:
    return and_(HostAllocation.start_at < end, HostAllocation.end_at > start)


async def busy_hosts(
    s: AsyncSession, start: datetime, end: datetime, *, besides: Sequence[str] = ()
) -> set[int]:
    """The hosts some reservation (other than `besides`) holds at an instant of [start, end)."""
    q = select(HostAllocation.host_id).where(_overlaps(start, end))
    if besides:
        q = q.where(HostAllocation.reservation_id.not_in(list(besides)))
    return set((await s.execute(q.distinct())).scalars())


async def allocate(
    s: AsyncSession,
    *,
    reservation_id: str,
    query: host_query.Query,
    min_hosts: int,
    max_hosts: int,
    start: datetime,
    end: datetime,
    now: datetime,
) -> list[ReservableHost]:
    """Hold `min_hosts`..`max_hosts` free matching hosts over [start, end) for the
    reservation (rows written in the caller's transaction); 409 saying why if too few."""
    live = select(Cloud.name).where(Cloud.removed_at.is_(None))
    hosts = list(
        (
            await s.execute(
                select(ReservableHost)
                .where(ReservableHost.reservable.is_(True), ReservableHost.cloud.in_(live))
                .order_by(ReservableHost.id)
                .with_for_update()
            )
        ).scalars()
    )
    matching = [h for h in hosts if host_query.matches(query, host_fields(h))]
    busy = await busy_hosts(s, start, end)
    free = [h for h in matching if h.id not in busy]
    if len(free) < min_hosts:
        raise Conflict(
            f"Not enough hosts available: the reservation needs at least {min_hosts}; "
            f"{len(hosts)} host{'s are' if len(hosts) != 1 else ' is'} registered, "
            f"{len(matching)} match its hypervisor_properties and resource_properties, "
            f"{len(free)} of them free from {format_date(start)} to {format_date(end)}."
        )
    chosen = free[:max_hosts]
    for h in chosen:
        s.add(
            HostAllocation(
                reservation_id=reservation_id,
                host_id=h.id,
                start_at=start,
                end_at=end,
                created_at=now,
            )
        )
    await s.flush()
    return chosen


async def release(s: AsyncSession, reservation_ids: Sequence[str]) -> None:
    """The reservations' hosts are free again (their lease ended or was deleted)."""
    if reservation_ids:
        await s.execute(
            delete(HostAllocation).where(HostAllocation.reservation_id.in_(list(reservation_ids)))
        )


async def hosts_of(s: AsyncSession, reservation_ids: Sequence[str]) -> dict[str, list[int]]:
    """The host ids each reservation holds, in host id order."""
    out: dict[str, list[int]] = {r: [] for r in reservation_ids}
    if reservation_ids:
        rows = await s.execute(
            select(HostAllocation.reservation_id, HostAllocation.host_id)
            .where(HostAllocation.reservation_id.in_(list(reservation_ids)))
            .order_by(HostAllocation.host_id)
        )
        for rid, hid in rows:
            out[str(rid)].append(int(hid))
    return out


async def allocations(
    s: AsyncSession,
    host_ids: Sequence[int],
    now: datetime,
    *,
    lease_id: str | None = None,
    reservation_id: str | None = None,
) -> dict[int, list[dict[str, Any]]]:
    """Blazar's allocations of each host: the reservations holding it from now on,
    `{"id", "lease_id", "start_date", "end_date"}`, by start."""
    out: dict[int, list[dict[str, Any]]] = {h: [] for h in host_ids}
    if not host_ids:
        return out
    q = (
        select(HostAllocation, Reservation.lease_id)
        .join(Reservation, Reservation.id == HostAllocation.reservation_id)
        .join(Lease, Lease.id == Reservation.lease_id)
        .where(HostAllocation.host_id.in_(list(host_ids)), HostAllocation.end_at > now)
        .order_by(HostAllocation.start_at, HostAllocation.id)
    )
    if lease_id is not None:
        q = q.where(Reservation.lease_id == lease_id)
    if reservation_id is not None:
        q = q.where(HostAllocation.reservation_id == reservation_id)
    for a, lid in await s.execute(q):
        out[a.host_id].append(
            {
                "id": a.reservation_id,
                "lease_id": lid,
                "start_date": format_date(a.start_at),
                "end_date": format_date(a.end_at),
            }
        )
    return out
