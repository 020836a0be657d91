"""Servers booted into a reservation (`--flavor <reservation id>`): where they go.

Such a server takes one of the reservation's slots on a cloud where the reservation holds
capacity; it adds no claim of its own (the reservation's claim already holds it), so it
neither needs nor takes anyone else's room. How many slots each cloud has left is the
reservation's share there minus its live servers already placed there.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.domain.errors import InvalidRequest, QuotaError
from canopy.domain.placement import Decision, Explanation, FilterStep
from canopy.domain.states import DesiredState
from canopy.reservations.states import LeaseStatus
from canopy.store.models import Claim, Cloud, Lease, Reservation, Server

# reservation id -> cloud -> free slots (a lease not ACTIVE has none anywhere)
Slots = dict[str, dict[str, int]]


async def free_slots(s: AsyncSession, flavor_ids: Iterable[str]) -> Slots:
    """The free slots of every reservation among `flavor_ids` (others are not in it)."""
    ids = sorted(set(flavor_ids))
    if not ids:
        return {}
    rows = await s.execute(
        select(Reservation, Lease.status, Lease.booted_at)
        .join(Lease, Lease.id == Reservation.lease_id)
        .where(Reservation.id.in_(ids))
    )
    out: Slots = {}
    booting: list[str] = []
    for r, status, booted_at in rows:
        active = status == LeaseStatus.ACTIVE
        out[r.id] = {p["cloud"]: int(p["amount"]) if active else 0 for p in r.placement}
        if status == LeaseStatus.PENDING and booted_at is not None:
            booting.append(r.id)
    if not out:
        return out
    # A lease booting its servers ahead of its start: the slots its early claims hold.
    for rid, per_cloud in (await early_slots(s, booting)).items():
        for where, n in per_cloud.items():
            if where in out[rid]:
                out[rid][where] = n
    used = await s.execute(
        select(Server.flavor_id, Server.cloud, func.count())
        .where(
            Server.flavor_id.in_(list(out)),
            Server.cloud.is_not(None),
            Server.deleted.is_(False),
            Server.desired_state != DesiredState.DELETED,
        )
        .group_by(Server.flavor_id, Server.cloud)
    )
    for rid, cloud, n in used:
        if cloud in out[rid]:
            out[rid][cloud] -= int(n)
    return out


async def early_slots(s: AsyncSession, reservation_ids: Sequence[str]) -> dict[str, dict[str, int]]:
    """Per reservation and cloud, how many servers its early claims hold (the slots of a
    lease booting ahead of its start)."""
    if not reservation_ids:
        return {}
    rows = await s.execute(
        select(Claim.reservation_id, Claim.cloud, func.sum(Claim.instances))
        .join(Reservation, Reservation.id == Claim.reservation_id)
        .join(Lease, Lease.id == Reservation.lease_id)
        .where(Claim.reservation_id.in_(list(reservation_ids)), Claim.starts_at < Lease.start_at)
        .group_by(Claim.reservation_id, Claim.cloud)
    )
    out: dict[str, dict[str, int]] = {}
    for rid, cloud, n in rows:
        out.setdefault(str(rid), {})[str(cloud)] = int(n)
    return out


def take_slot(
    slots: Slots, reservation_id: str, clouds: dict[str, Cloud], excluded: Iterable[str] = ()
) -> Decision:
    """A decision for one server in the reservation: the lowest-tier cloud with a free slot.

    No cloud when every slot is taken (or the lease is not active): the server fails with
    a reason saying so, it never spills outside the reservation.
    """
    tried = set(excluded)
    mine = slots.get(reservation_id, {})
    usable = [
        c
        for c, free in mine.items()
        if free > 0 and c not in tried and c in clouds and clouds[c].enabled
    ]
    explanation = Explanation()
    if not usable:
        why = {
            c: "no free slot of the reservation here (all in use, or the lease is not active)"
            for c in mine
        } or {reservation_id: "the reservation no longer exists"}
        explanation.steps.append(FilterStep("reservation", len(why), why))
        return Decision(cloud=None, alternates=[], explanation=explanation)
    usable.sort(key=lambda c: (clouds[c].tier, -mine[c], c))
    chosen = usable[0]
    mine[chosen] -= 1
    explanation.policy = (
        f"inside reservation {reservation_id}: its capacity on {chosen} "
        f"({mine[chosen]} slot{'s' if mine[chosen] != 1 else ''} left there)"
    )
    return Decision(cloud=chosen, alternates=usable[1:], explanation=explanation)


async def check_boot(
    s: AsyncSession,
    flavor_id: str,
    project_id: str,
    *,
    min_count: int,
    max_count: int,
    early: bool = False,
) -> int | None:
    """How many of `min_count`..`max_count` servers may boot into the reservation whose
    flavor is `flavor_id` (None: it is no reservation's flavor).

    Another project's reservation is not found, as in Nova; one whose lease is not active
    says so; more servers than the reservation holds are refused (QuotaError, 403) with
    how many it holds and uses. The lease row is locked, so two creates cannot both take
    the last slot (placement checks the slots again in any case).
    """
    row = (
        await s.execute(
            select(Reservation, Lease)
            .join(Lease, Lease.id == Reservation.lease_id)
            .where(Reservation.id == flavor_id)
            .with_for_update(of=Lease)
        )
    ).one_or_none()
    if row is None:
        return None
    res, lease = row
    if lease.project_id != project_id:
        raise InvalidRequest(f"Flavor {flavor_id} could not be found.")
    if lease.status != LeaseStatus.ACTIVE and not (early and lease.status == LeaseStatus.PENDING):
        raise InvalidRequest(
            f"Flavor {flavor_id} is reservation {res.id} of lease {lease.name!r}, which is "
            f"{lease.status}: it can be used only while the lease is ACTIVE."
        )
    used = await s.scalar(
        select(func.count()).where(
            Server.flavor_id == res.id,
            Server.deleted.is_(False),
            Server.desired_state != DesiredState.DELETED,
        )
    )
    room = res.amount - int(used or 0)
    if room < min_count:
        raise QuotaError(
            f"Reservation {res.id} of lease {lease.name!r} holds {res.amount} server"
            f"{'s' if res.amount != 1 else ''} and {used} in use: no room for {min_count} more."
        )
    return min(max_count, room)
