"""Changing a reservation's amount or size on a lease update (`lease set --reservation
id=<rid>,amount=N`), in the update's transaction with the lease row and every cloud row
locked: two updates or creates never oversubscribe a cloud.

- More servers: the extra ones are placed by the create's policy (private first, burst,
  spend cap) over the lease's window, beside everything already claimed then (this
  reservation's own claim included), and claimed; where there is no room, 409 naming the
  filter that emptied the list, and nothing changes. An affine reservation grows only on
  its cloud.
- Fewer servers: the claim shrinks, burst capacity first (highest tier, then dearest). An
  ACTIVE lease (or one booting its servers ahead of its start) keeps at least the servers
  running in it, on the clouds they run on: lowering below them is a 409 saying how many
  run. The servers a lease carries (`servers`) are a floor too.
- Another size (virtual:instance, before the lease starts and before its servers boot):
  the reservation is placed afresh at the new size, as a create would, and its flavor
  follows. While the lease is ACTIVE only the amount can change (Blazar's rule).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.config import Settings
from canopy.domain.errors import Conflict, InvalidRequest
from canopy.domain.states import DesiredState
from canopy.reservations import capacity, ready
from canopy.reservations.changes import Change
from canopy.reservations.flavors import flavor_name
from canopy.reservations.lifecycle import settle
from canopy.reservations.states import LeaseStatus
from canopy.store import claim_counts
from canopy.store.models import (
    Claim,
    Cloud,
    Flavor,
    FlavorMapping,
    Lease,
    LeaseServer,
    Reservation,
    Server,
)


async def apply(
    s: AsyncSession,
    settings: Settings,
    lease: Lease,
    reservations: list[Reservation],
    changes: list[Change],
    now: datetime,
) -> None:
    """Apply `changes` (each changes something, see `changes.match`) to the lease's
    reservations over its current window; all or nothing (the caller's transaction)."""
    if not changes:
        return
    booting = lease.status == LeaseStatus.PENDING and lease.booted_at is not None
    running = lease.status == LeaseStatus.ACTIVE or booting
    for c in changes:
        if c.resizes and lease.status == LeaseStatus.ACTIVE:
            raise Conflict("An active reservation only accepts to update amount.")
        if c.resizes and booting:
            raise Conflict(
                f"Lease {lease.id}'s servers are already booting for its start: its "
                "reservations' sizes can no longer change."
            )
    clouds = await capacity.lock_clouds(s)
    by_id = {r.id: r for r in reservations}
    for c in changes:
        r = by_id[c.id]
        amount = r.amount if c.amount is None else c.amount
        await _floors(s, lease, r, amount, running)
        if c.resizes:
            await _replace(s, settings, clouds, lease, r, c, amount, now)
        elif amount > r.amount:
            await _grow(s, settings, clouds, lease, r, amount, now)
        else:
            await _shrink(s, clouds, lease, r, amount, now, running)
        r.amount = amount
        r.updated_at = now
        await s.flush()  # the next reservation's placement sees these claims
    if lease.boot_lead_seconds is not None and lease.status == LeaseStatus.PENDING and not booting:
        # The early claims follow the reservations' new shares and sizes.
        await claim_counts.apply(
            s,
            await claim_counts.drop(
                s, Claim.reservation_id.in_(list(by_id)), Claim.starts_at < lease.start_at
            ),
        )
        await ready.schedule_boot(s, lease, now)
    await settle(s, reservations, now)


async def _floors(
    s: AsyncSession, lease: Lease, r: Reservation, amount: int, running: bool
) -> None:
    """Refuse an amount below the servers the lease carries, or (`running`) below the
    servers running in the reservation."""
    carried = int(
        await s.scalar(
            select(func.coalesce(func.sum(LeaseServer.count), 0)).where(
                LeaseServer.reservation_id == r.id
            )
        )
        or 0
    )
    if amount < carried:
        raise Conflict(
            f"Lease {lease.id} carries {carried} server{'s' if carried != 1 else ''} in "
            f"reservation {r.id}: its amount cannot go below {carried}."
        )
    if running:
        live = sum((await live_servers(s, r.id)).values())
        if amount < live:
            raise Conflict(
                f"Reservation {r.id} has {live} server{'s' if live != 1 else ''} in it: "
                f"its amount cannot go below {live} (delete servers first)."
            )


async def live_servers(s: AsyncSession, reservation_id: str) -> Counter[str | None]:
    """The reservation's live servers per cloud (None: not placed yet)."""
    rows = await s.execute(
        select(Server.cloud, func.count())
        .where(
            Server.flavor_id == reservation_id,
            Server.deleted.is_(False),
            Server.desired_state != DesiredState.DELETED,
        )
        .group_by(Server.cloud)
    )
    return Counter({cloud: int(n) for cloud, n in rows})


def _shares(r: Reservation) -> list[capacity.Share]:
    return [capacity.Share(p["cloud"], int(p["amount"]), p["reason"]) for p in r.placement]


def _window(lease: Lease, now: datetime) -> datetime:
    """From when more capacity must be free: the start, or now for a started lease."""
    return max(lease.start_at, now) if lease.status == LeaseStatus.ACTIVE else lease.start_at


async def _offers(
    s: AsyncSession, r: Reservation, size: capacity.Size
) -> dict[str, capacity.Offer]:
    """Per cloud, how it runs the reservation's servers: as its flavor's mapping where the
    reservation is already held, else as a create would choose."""
    out = await capacity.offers(s, size, r.source_flavor_id)
    for m in (
        await s.execute(select(FlavorMapping).where(FlavorMapping.flavor_id == r.id))
    ).scalars():
        out[m.cloud] = capacity.Offer(m.remote_flavor, r.id, m.price_per_hour_micros)
    return out


async def _grow(
    s: AsyncSession,
    settings: Settings,
    clouds: dict[str, Cloud],
    lease: Lease,
    r: Reservation,
    amount: int,
    now: datetime,
) -> None:
    size = capacity.Size(flavor_name(r.id), r.vcpus, r.memory_mb, r.disk_gb)
    offered = await _offers(s, r, size)
    snaps = await capacity.window_snapshots(
        s, clouds, _window(lease, now), lease.end_at, now, size, offered
    )
    old = _shares(r)
    pinned = old[0].cloud if r.affinity and old else None
    try:
        extra = capacity.place(
            snaps, size, amount - r.amount, r.affinity, settings, r.id, pinned=pinned
        )
    except Conflict as e:
        where = f" (it is affine: only on {pinned})" if pinned else ""
        raise Conflict(
            f"Reservation {r.id} cannot grow from {r.amount} to {amount}{where}: {e}"
        ) from e
    merged = {sh.cloud: sh for sh in old}
    for sh in extra:
        had = merged.get(sh.cloud)
        merged[sh.cloud] = capacity.Share(
            sh.cloud, sh.amount + (had.amount if had else 0), had.reason if had else sh.reason
        )
    await _rehold(s, clouds, lease, r, size, offered, list(merged.values()), now)


async def _shrink(
    s: AsyncSession,
    clouds: dict[str, Cloud],
    lease: Lease,
    r: Reservation,
    amount: int,
    now: datetime,
    running: bool,
) -> None:
    """Give back r.amount - amount servers: burst first, never below a cloud's running
    servers (when `running`)."""
    live = await live_servers(s, r.id) if running else Counter[str | None]()
    shares = {sh.cloud: sh for sh in _shares(r)}
    order = sorted(
        shares.values(),
        key=lambda sh: (
            -(clouds[sh.cloud].tier if sh.cloud in clouds else 99),
            -int(_price(r, sh.cloud)),
            sh.cloud,
        ),
    )
    left = r.amount - amount
    for sh in order:
        give = min(left, sh.amount - live.get(sh.cloud, 0))
        if give <= 0:
            continue
        left -= give
        shares[sh.cloud] = capacity.Share(sh.cloud, sh.amount - give, sh.reason)
    if left:  # _floors has counted every live server: cannot happen
        raise Conflict(f"Reservation {r.id} cannot give back {left} more of its servers.")
    size = capacity.Size(flavor_name(r.id), r.vcpus, r.memory_mb, r.disk_gb)
    offered = await _offers(s, r, size)
    kept = [sh for sh in shares.values() if sh.amount > 0]
    await _rehold(s, clouds, lease, r, size, offered, kept, now)


def _price(r: Reservation, cloud: str) -> int:
    for p in r.placement:
        if p["cloud"] == cloud:
            return int(p.get("price_per_hour_micros", 0))
    return 0


async def _replace(
    s: AsyncSession,
    settings: Settings,
    clouds: dict[str, Cloud],
    lease: Lease,
    r: Reservation,
    c: Change,
    amount: int,
    now: datetime,
) -> None:
    """Place the reservation afresh at its new size (a lease not started, nor booting)."""
    vcpus = r.vcpus if c.vcpus is None else c.vcpus
    ram = r.memory_mb if c.memory_mb is None else c.memory_mb
    disk = r.disk_gb if c.disk_gb is None else c.disk_gb
    size = capacity.Size(flavor_name(r.id), vcpus, ram, disk)
    await claim_counts.apply(s, await claim_counts.drop(s, Claim.reservation_id == r.id))
    await s.flush()
    offered = await capacity.offers(s, size, None)
    snaps = await capacity.window_snapshots(
        s, clouds, lease.start_at, lease.end_at, now, size, offered
    )
    try:
        shares = capacity.place(snaps, size, amount, r.affinity, settings, r.id)
    except Conflict as e:
        raise Conflict(
            f"Reservation {r.id} cannot hold {amount} server{'s' if amount != 1 else ''} of "
            f"{vcpus} vcpus, {ram} MB ram, {disk} GB disk: {e}"
        ) from e
    r.vcpus, r.memory_mb, r.disk_gb = vcpus, ram, disk
    flavor = await s.get(Flavor, r.id)
    if flavor is None:
        raise InvalidRequest(f"Reservation {r.id} has lost its flavor: delete the lease.")
    flavor.vcpus, flavor.ram_mb, flavor.disk_gb = vcpus, ram, disk
    await s.execute(delete(FlavorMapping).where(FlavorMapping.flavor_id == r.id))
    await _rehold(s, clouds, lease, r, size, offered, shares, now)


async def _rehold(
    s: AsyncSession,
    clouds: dict[str, Cloud],
    lease: Lease,
    r: Reservation,
    size: capacity.Size,
    offered: dict[str, capacity.Offer],
    shares: list[capacity.Share],
    now: datetime,
) -> None:
    """The reservation's claim over the lease's window becomes `shares` (the early claims
    of a lease booting its servers stay); its placement and flavor mappings follow."""
    await claim_counts.apply(
        s,
        await claim_counts.drop(s, Claim.reservation_id == r.id, Claim.starts_at >= lease.start_at),
    )
    await s.flush()
    shares = sorted(shares, key=lambda sh: sh.cloud)
    await capacity.hold(
        s,
        clouds,
        shares,
        size,
        offered,
        reservation_id=r.id,
        start=lease.start_at,
        end=lease.end_at,
        now=now,
    )
    mapped = set(
        (
            await s.execute(select(FlavorMapping.cloud).where(FlavorMapping.flavor_id == r.id))
        ).scalars()
    )
    wanted = {sh.cloud for sh in shares}
    stale = sorted(mapped - wanted)
    if stale:
        await s.execute(
            delete(FlavorMapping).where(
                FlavorMapping.flavor_id == r.id, FlavorMapping.cloud.in_(stale)
            )
        )
    for cloud in sorted(wanted - mapped):
        o = offered[cloud]
        s.add(
            FlavorMapping(
                cloud=cloud,
                flavor_id=r.id,
                remote_flavor=o.remote_flavor,
                price_per_hour_micros=o.price_per_hour_micros,
            )
        )
    r.placement = [
        {
            "cloud": sh.cloud,
            "amount": sh.amount,
            "reason": sh.reason,
            "price_per_hour_micros": offered[sh.cloud].price_per_hour_micros,
        }
        for sh in shares
    ]
