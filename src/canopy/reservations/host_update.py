"""Changing a host reservation on a lease update (Blazar's host plugin `update_reservation`):
`lease set --reservation id=<rid>,min=..,max=..,hypervisor_properties=..,resource_properties=..`
and moving the lease's dates.

Blazar's rules, in the update's transaction with the lease row, every cloud row and every
registered host locked (so two workers never give one host to two overlapping
reservations):

- A change naming `min`, `max` or a query, or a window that grows (an earlier start or a
  later end), reallocates: each host held is kept if it still matches both queries and no
  other reservation holds it at an instant of the new window; beyond `max` the kept hosts
  of highest id go. If fewer than `max` are kept, free matching hosts are added in host id
  order, up to `max`, and at least enough to reach `min` (else 409, "Not enough hosts
  available", and nothing changes). As in Blazar this also tops a reservation up towards
  `max` when it got fewer at create.
- While the lease is ACTIVE a host reservation never loses a host (Blazar's
  NotEnoughHostsAvailable when one would go): it may gain hosts (a higher `max` or `min`, a
  later end), usable at once with `--hint reservation=<id>`.
- A window that only shrinks (or stays) keeps the hosts and only moves their window.

Canopy answers 409 where Blazar's NotEnoughHostsAvailable is a 500 without a code: the
request is refused for the state of the store, not broken.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.domain.errors import Conflict
from canopy.reservations import host_query
from canopy.reservations.changes import Change
from canopy.reservations.dates import format_date
from canopy.reservations.host_leases import busy_hosts, host_fields, summarize
from canopy.reservations.states import LeaseStatus
from canopy.store.models import Cloud, HostAllocation, Lease, ReservableHost, Reservation


async def _locked_hosts(s: AsyncSession) -> list[ReservableHost]:
    """Every registered host, locked in id order (the create's order: no deadlock)."""
    rows = await s.execute(
        select(ReservableHost).order_by(ReservableHost.id).with_for_update(),
    )
    return list(rows.scalars())


async def _held(s: AsyncSession, reservation_id: str) -> list[int]:
    rows = await s.execute(
        select(HostAllocation.host_id)
        .where(HostAllocation.reservation_id == reservation_id)
        .order_by(HostAllocation.host_id)
    )
    return [int(h) for h in rows.scalars()]


def _names(hosts: dict[int, ReservableHost], ids: Sequence[int]) -> str:
    return ", ".join(f"{hosts[i].cloud}:{hosts[i].host}" if i in hosts else str(i) for i in ids)


async def apply(
    s: AsyncSession,
    lease: Lease,
    r: Reservation,
    change: Change | None,
    before: tuple[datetime, datetime],
    now: datetime,
) -> None:
    """Bring host reservation `r` to `change` (None: only the lease's window moved) over
    the lease's window [lease.start_at, lease.end_at), which was `before`."""
    start, end = lease.start_at, lease.end_at
    grows = start < before[0] or end > before[1]
    if change is None and not grows:
        await s.execute(
            update(HostAllocation)
            .where(HostAllocation.reservation_id == r.id)
            .values(start_at=start, end_at=end)
        )
        return
    low = r.min_hosts or 1
    high = r.max_hosts or low
    hyper, props = r.hypervisor_properties or "", r.resource_properties or ""
    if change is not None:
        low = change.min_hosts if change.min_hosts is not None else low
        high = change.max_hosts if change.max_hosts is not None else high
        hyper = hyper if change.hypervisor_properties is None else change.hypervisor_properties
        props = props if change.resource_properties is None else change.resource_properties
    query = host_query.parse(hyper, "hypervisor_properties") + host_query.parse(
        props, "resource_properties"
    )
    hosts = await _locked_hosts(s)
    by_id = {h.id: h for h in hosts}
    held = await _held(s, r.id)
    busy = await busy_hosts(s, start, end, besides=[r.id])
    gone: dict[int, str] = {}
    for hid in held:
        h = by_id.get(hid)
        if h is None or not host_query.matches(query, host_fields(h)):
            gone[hid] = "does not match its queries"
        elif hid in busy:
            gone[hid] = "is held by another reservation in the new window"
    kept = [h for h in held if h not in gone]
    for hid in kept[high:]:
        gone[hid] = f"is beyond its max of {high}"
    kept = kept[:high]
    why = "; ".join(f"{_names(by_id, [h])} {w}" for h, w in sorted(gone.items()))
    if gone and lease.status == LeaseStatus.ACTIVE:
        raise Conflict(
            f"Not enough hosts available: reservation {r.id} is active and would lose "
            f"{len(gone)} of its hosts ({why}). An active host reservation keeps every host "
            "it holds: it can only gain hosts."
        )
    added: list[ReservableHost] = []
    if len(kept) < high:
        need = max(low - len(kept), 0)
        live = set(
            (await s.execute(select(Cloud.name).where(Cloud.removed_at.is_(None)))).scalars()
        )
        pool = [h for h in hosts if h.reservable and h.cloud in live and h.id not in held]
        matching = [h for h in pool if host_query.matches(query, host_fields(h))]
        free = [h for h in matching if h.id not in busy]
        if len(free) < need:
            raise Conflict(
                f"Not enough hosts available: reservation {r.id} needs at least {low} "
                f"host{'s' if low != 1 else ''}; it keeps {len(kept)} of the {len(held)} it "
                f"holds{f' ({why})' if gone else ''}, and of the {len(pool)} other registered "
                f"hosts {len(matching)} match its hypervisor_properties and "
                f"resource_properties, {len(free)} of them free from {format_date(start)} "
                f"to {format_date(end)}."
            )
        added = free[: high - len(kept)]
    if gone:
        await s.execute(
            delete(HostAllocation).where(
                HostAllocation.reservation_id == r.id, HostAllocation.host_id.in_(list(gone))
            )
        )
    await s.execute(
        update(HostAllocation)
        .where(HostAllocation.reservation_id == r.id)
        .values(start_at=start, end_at=end)
    )
    for h in added:
        s.add(
            HostAllocation(
                reservation_id=r.id, host_id=h.id, start_at=start, end_at=end, created_at=now
            )
        )
    await s.flush()
    r.min_hosts, r.max_hosts = low, high
    r.hypervisor_properties, r.resource_properties = hyper, props
    summarize(r, sorted([by_id[h] for h in kept] + added, key=lambda h: h.id))
    r.updated_at = now
