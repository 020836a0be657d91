"""Servers booted into a host reservation (`--hint reservation=<id>`): which host each goes to.

Such a server runs on one of the hosts its reservation holds, pinned there (the driver is
told the host, `ServerSpec.host`), and takes no claim: the host's capacity is held by its
own claim from the day it was registered (see reservations/hosts.py). The hint is usable
by the lease's project only, and only while the lease is ACTIVE; another project's
reservation is "not found", as Nova says of what it will not show. A host has room for
what its size leaves beside the live servers of the reservation already on it; servers
beyond the reserved hosts' room are refused (403, Nova's quota fault), never booted
elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.domain.errors import InvalidRequest, QuotaError
from canopy.domain.placement import Decision, Explanation, FilterStep
from canopy.domain.states import DesiredState, Phase
from canopy.reservations.states import PHYSICAL_HOST, LeaseStatus
from canopy.store.models import (
    Cloud,
    Flavor,
    HostAllocation,
    Lease,
    ReservableHost,
    Reservation,
    Server,
)

HINT = "reservation"


@dataclass(slots=True)
class Room:
    """What one reserved host has left for the reservation's servers."""

    host_id: int
    cloud: str
    host: str  # the cloud's own name for it
    vcpus: int
    ram_mb: int
    disk_gb: int

    def fits(self, f: Flavor) -> bool:
        return self.vcpus >= f.vcpus and self.ram_mb >= f.ram_mb and self.disk_gb >= f.disk_gb

    def take(self, f: Flavor) -> None:
        self.vcpus -= f.vcpus
        self.ram_mb -= f.ram_mb
        self.disk_gb -= f.disk_gb


def hinted(hints: Any) -> str | None:
    """The reservation a `reservation` hint names (None: no such hint); 400 if malformed."""
    if not isinstance(hints, dict) or HINT not in hints:
        return None
    value = hints[HINT]
    if isinstance(value, list) and len(value) == 1:
        value = value[0]  # Nova takes a one-item list for a single-valued hint
    if not isinstance(value, str) or not value.strip() or len(value) > 64:
        raise InvalidRequest(
            "Invalid input for field/attribute os:scheduler_hints. Hint 'reservation' must "
            "be a reservation id (a string of at most 64 characters)."
        )
    return value.strip()


async def rooms(
    s: AsyncSession, reservation_ids: Iterable[str], *, active_only: bool = True
) -> dict[str, list[Room]]:
    """Per host reservation among `reservation_ids` (of a lease that is ACTIVE, unless
    `active_only` is False), the room each of its hosts has left, in host id order: the
    host's size minus the reservation's live servers placed on it."""
    ids = sorted(set(reservation_ids))
    if not ids:
        return {}
    q = (
        select(HostAllocation.reservation_id, ReservableHost)
        .join(ReservableHost, ReservableHost.id == HostAllocation.host_id)
        .join(Reservation, Reservation.id == HostAllocation.reservation_id)
        .join(Lease, Lease.id == Reservation.lease_id)
        .where(HostAllocation.reservation_id.in_(ids))
        .order_by(ReservableHost.id)
    )
    if active_only:
        q = q.where(Lease.status == LeaseStatus.ACTIVE)
    out: dict[str, list[Room]] = {}
    by_host: dict[tuple[str, int], Room] = {}
    for rid, h in await s.execute(q):
        room = Room(h.id, h.cloud, h.host, h.vcpus, h.memory_mb, h.local_gb)
        out.setdefault(str(rid), []).append(room)
        by_host[(str(rid), h.id)] = room
    used = await s.execute(
        select(Server.reservation_id, Server.reserved_host_id, Flavor)
        .join(Flavor, Flavor.id == Server.flavor_id)
        .where(
            Server.reservation_id.in_(list(out)),
            Server.reserved_host_id.is_not(None),
            Server.deleted.is_(False),
            Server.desired_state != DesiredState.DELETED,
        )
    )
    for held_by, host_id, flavor in used:
        taken = by_host.get((str(held_by), int(host_id or 0)))
        if taken is not None:
            taken.take(flavor)
    return out


def take_host(
    rooms_: dict[str, list[Room]],
    reservation_id: str,
    flavor: Flavor,
    clouds: dict[str, Cloud],
    excluded: Iterable[str] = (),
) -> tuple[Decision, Room | None]:
    """A decision for one server of the reservation: the first of its hosts with room
    (first fit, host id order), on an enabled cloud not tried before. No host when none
    has room or the lease is not ACTIVE: the server fails saying so; it never spills
    outside the reservation."""
    tried = set(excluded)
    mine = rooms_.get(reservation_id, [])
    explanation = Explanation()
    for room in mine:
        cloud = clouds.get(room.cloud)
        if room.fits(flavor) and room.cloud not in tried and cloud is not None and cloud.enabled:
            room.take(flavor)
            explanation.policy = (
                f"inside host reservation {reservation_id}: pinned to its host "
                f"{room.cloud}:{room.host}"
            )
            return Decision(cloud=room.cloud, alternates=[], explanation=explanation), room
    why = {
        f"{r.cloud}:{r.host}": "no room left for this flavor beside the reservation's servers"
        for r in mine
    } or {reservation_id: "the reservation's lease is not ACTIVE, or it holds no host"}
    explanation.steps.append(FilterStep("reservation", len(why), why))
    return Decision(cloud=None, alternates=[], explanation=explanation), None


async def check_hint(
    s: AsyncSession,
    reservation_id: str,
    project_id: str,
    flavor: Flavor,
    *,
    min_count: int,
    max_count: int,
) -> int:
    """How many of `min_count`..`max_count` servers of `flavor` may boot into the host
    reservation: 400 if it is not the caller's, not a host reservation or not ACTIVE;
    403 (QuotaError) if its hosts have room for fewer than `min_count`. The lease row is
    locked, so two creates cannot both take the last room (placement checks again)."""
    row = (
        await s.execute(
            select(Reservation, Lease)
            .join(Lease, Lease.id == Reservation.lease_id)
            .where(Reservation.id == reservation_id)
            .with_for_update(of=Lease)
        )
    ).one_or_none()
    if row is None or row[1].project_id != project_id:
        raise InvalidRequest(
            f"Scheduler hint 'reservation': reservation {reservation_id[:64]} could not be found."
        )
    res, lease = row
    if res.resource_type != PHYSICAL_HOST:
        raise InvalidRequest(
            f"Scheduler hint 'reservation': reservation {res.id} is an instance reservation "
            f"({res.resource_type}); boot into it with --flavor {res.id} instead."
        )
    if lease.status != LeaseStatus.ACTIVE:
        raise InvalidRequest(
            f"Scheduler hint 'reservation': reservation {res.id} of lease {lease.name!r} is "
            f"{lease.status}: it can be used only while the lease is ACTIVE."
        )
    if not flavor.is_public:
        raise InvalidRequest(
            "Scheduler hint 'reservation' takes an ordinary flavor: the reservation's hosts "
            "run it; a reservation's own flavor is for instance reservations."
        )
    mine = (await rooms(s, [res.id])).get(res.id, [])
    # Servers of the reservation not placed yet take their room first, first fit.
    waiting = await s.execute(
        select(Flavor)
        .join(Server, Server.flavor_id == Flavor.id)
        .where(
            Server.reservation_id == res.id,
            Server.reserved_host_id.is_(None),
            Server.cloud.is_(None),
            Server.deleted.is_(False),
            Server.desired_state != DesiredState.DELETED,
            Server.phase != Phase.FAILED,  # never placed (ERROR): it holds no room
        )
    )
    for f in waiting.scalars():
        _first_fit(mine, f)
    room = 0
    while room < max_count and _first_fit(mine, flavor):
        room += 1
    if room < min_count:
        raise QuotaError(
            f"Reservation {res.id} of lease {lease.name!r} holds {len(mine)} host"
            f"{'s' if len(mine) != 1 else ''} with room for {room} more server"
            f"{'s' if room != 1 else ''} of flavor {flavor.name!r}: no room for {min_count}."
        )
    return room


def _first_fit(mine: Sequence[Room], f: Flavor) -> bool:
    for r in mine:
        if r.fits(f):
            r.take(f)
            return True
    return False
