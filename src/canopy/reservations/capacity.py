"""Where a reservation's servers fit over its whole window, and the claims that hold them.

The scheduler is the servers' own pipeline (filters, weighers, burst policy), run over
snapshots whose usage is each cloud's *peak* over the window [start, end) instead of its
usage now: a server fits a cloud for the whole window exactly when it fits at the busiest
moment of it. The reservation's servers are placed one at a time (each decision sees the
ones before it, as in a batch of servers), so the part that does not fit private capacity
bursts to the next tier, within `max_spend_per_hour` at the window's peak spend.

The caller holds the cloud rows locked (`lock_clouds`, name order, as placement does) from
the peak query until its claims are written, in one transaction: many API processes and
workers never oversubscribe a cloud at any instant.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.config import Settings
from canopy.domain.errors import Conflict, InvalidRequest
from canopy.domain.placement import CloudSnapshot, GroupState, PlacementRequest
from canopy.domain.specs import Resources
from canopy.scheduler import apply_claim, schedule
from canopy.store.claims import Usage, claim_row, peaks_by_cloud
from canopy.store.models import Claim, Cloud, Flavor, FlavorMapping
from canopy.store.snapshots import cloud_snapshot


@dataclass(frozen=True, slots=True)
class Size:
    """One reserved server's size, and the flavor name the scheduler knows it by."""

    flavor: str
    vcpus: int
    ram_mb: int
    disk_gb: int


@dataclass(frozen=True, slots=True)
class Offer:
    """What a cloud runs a reserved server as, and what it costs there per hour."""

    remote_flavor: str
    flavor_id: str  # the canopy flavor whose mapping it is
    price_per_hour_micros: int


@dataclass(frozen=True, slots=True)
class Share:
    """The part of a reservation held on one cloud."""

    cloud: str
    amount: int
    reason: str


async def lock_clouds(s: AsyncSession) -> dict[str, Cloud]:
    """Every cloud row, locked in name order (placement's order: no deadlock between them)."""
    rows = await s.execute(select(Cloud).order_by(Cloud.name).with_for_update())
    return {c.name: c for c in rows.scalars()}


async def public_flavor(s: AsyncSession, ref: str) -> Flavor:
    """A public flavor by id, else by name (what a flavor:instance reservation names)."""
    live = Flavor.deleted_at.is_(None)  # one deleted while servers use it is not offered
    f = await s.scalar(select(Flavor).where(Flavor.id == ref, live))
    if f is None:
        f = await s.scalar(select(Flavor).where(Flavor.name == ref, live))
    if f is None or not f.is_public:
        raise InvalidRequest(f"Flavor {ref!r:.80} could not be found.")
    return f


async def offers(s: AsyncSession, size: Size, source_flavor_id: str | None) -> dict[str, Offer]:
    """Per cloud, how it would run one server of `size`.

    A flavor:instance reservation runs as its flavor wherever that is mapped; a
    virtual:instance one as the cheapest mapped flavor at least as large in every
    dimension (the cloud's "cheapest that fits").
    """
    q = select(FlavorMapping, Flavor).join(Flavor, Flavor.id == FlavorMapping.flavor_id)
    if source_flavor_id is not None:
        # A reservation made before its flavor was deleted keeps running (and resizing) as it.
        q = q.where(Flavor.id == source_flavor_id)
    else:
        q = q.where(
            Flavor.is_public.is_(True),
            Flavor.deleted_at.is_(None),
            Flavor.vcpus >= size.vcpus,
            Flavor.ram_mb >= size.ram_mb,
            Flavor.disk_gb >= size.disk_gb,
        )
    best: dict[str, tuple[tuple[int, int, int, str], Offer]] = {}
    for m, f in await s.execute(q):
        key = (m.price_per_hour_micros, f.vcpus, f.ram_mb, f.id)
        if m.cloud not in best or key < best[m.cloud][0]:
            best[m.cloud] = (key, Offer(m.remote_flavor, f.id, m.price_per_hour_micros))
    out = {cloud: offer for cloud, (_, offer) in best.items()}
    return out


async def window_snapshots(
    s: AsyncSession,
    clouds: dict[str, Cloud],
    start: datetime,
    end: datetime,
    now: datetime,
    size: Size,
    offered: dict[str, Offer],
) -> dict[str, CloudSnapshot]:
    """The clouds as the scheduler sees them for a server that runs over [start, end)."""
    snaps: dict[str, CloudSnapshot] = {}
    peaks = await peaks_by_cloud(s, sorted(clouds), start, end)  # one query, every cloud
    for c in clouds.values():
        offer = offered.get(c.name)
        snaps[c.name] = cloud_snapshot(
            c,
            now,
            peaks[c.name],
            price_per_hour_micros={}
            if offer is None
            else {size.flavor: offer.price_per_hour_micros},
            images=None,
        )
    return snaps


def shortfall(
    cloud: Cloud, peak: Usage, vcpus: int, ram_mb: int, count: int
) -> tuple[int, str, int] | None:
    """The first dimension in which `count` servers of (vcpus, ram_mb) do not fit on
    `cloud` beside its `peak` use over a window: (free, unit, needed), or None if they fit."""
    for cap, used, need, unit in (
        (cloud.vcpus_capacity, peak.vcpus, vcpus * count, "vcpus"),
        (cloud.ram_mb_capacity, peak.ram_mb, ram_mb * count, "MB ram"),
        (cloud.instances_capacity, peak.instances, count, "instances"),
    ):
        if cap is not None and cap - used < need:
            return max(cap - used, 0), unit, need
    return None


def place(
    snaps: dict[str, CloudSnapshot],
    size: Size,
    amount: int,
    affinity: bool | None,
    settings: Settings,
    reservation_id: str,
    *,
    pinned: str | None = None,
) -> list[Share]:
    """Place `amount` servers of `size` on the snapshots (moved as they are claimed).

    Conflict, naming the filter that emptied the list, when one of them fits nowhere:
    a reservation is held whole or not at all. `affinity` True keeps every server on one
    cloud: the policy's first choice, then, if that cloud cannot hold them all, the next
    one (each cloud is tried once), so an affine reservation is refused only when no
    single cloud can hold it. False and None leave the clouds free (anti-affinity between
    hosts is each cloud's own business). `pinned` (more servers for an affine reservation
    already held there): every server on that cloud, or Conflict.
    """
    if pinned is not None:
        placed, reasons, failure, _ = _place_each(
            snaps, size, amount, frozenset(), settings, reservation_id, first=pinned
        )
        if failure is not None:
            raise Conflict(failure)
        return [Share(cloud, n, reasons[cloud]) for cloud, n in sorted(placed.items())]
    if not affinity:
        placed, reasons, failure, _ = _place_each(
            snaps, size, amount, None, settings, reservation_id
        )
        if failure is not None:
            raise Conflict(failure)
        return [Share(cloud, n, reasons[cloud]) for cloud, n in sorted(placed.items())]
    tried: frozenset[str] = frozenset()
    first_failure: str | None = None
    while True:
        trial = {name: replace(c) for name, c in snaps.items()}
        placed, reasons, failure, first = _place_each(
            trial, size, amount, tried, settings, reservation_id
        )
        if failure is None:
            snaps.update(trial)
            return [Share(cloud, n, reasons[cloud]) for cloud, n in sorted(placed.items())]
        first_failure = first_failure or failure
        if first is None or first in tried:
            raise Conflict(first_failure)
        tried |= {first}


def _place_each(
    snaps: dict[str, CloudSnapshot],
    size: Size,
    amount: int,
    affine_except: frozenset[str] | None,
    settings: Settings,
    reservation_id: str,
    first: str | None = None,
) -> tuple[Counter[str], dict[str, str], str | None, str | None]:
    """One server after the other; (placed per cloud, reasons, failure or None, first
    cloud). `affine_except` None: no affinity; else every server on the first one's cloud
    (`first`, when given), which is none of these."""
    placed: Counter[str] = Counter()
    reasons: dict[str, str] = {}
    for i in range(amount):
        group = None
        excluded: frozenset[str] = frozenset()
        if affine_except is not None:
            excluded = affine_except
            if first is not None:
                group = GroupState(policy="affinity", member_clouds=(first,))
        req = PlacementRequest(
            server_id=f"{reservation_id}#{i}",
            flavor=size.flavor,
            resources=Resources(size.vcpus, size.ram_mb, size.disk_gb, 1),
            group=group,
            excluded=excluded,
        )
        decision = schedule(list(snaps.values()), req, settings.scheduler)
        if decision.cloud is None:
            held = f" ({i} of {amount} would fit)" if i else ""
            failure = f"Not enough resources available{held}. {decision.reason}"
            return placed, reasons, failure, first
        apply_claim(snaps[decision.cloud], req)
        placed[decision.cloud] += 1
        reasons.setdefault(decision.cloud, decision.reason)
        first = first or decision.cloud
    return placed, reasons, None, first


async def hold(
    s: AsyncSession,
    clouds: dict[str, Cloud],
    shares: list[Share],
    size: Size,
    offered: dict[str, Offer],
    *,
    reservation_id: str,
    start: datetime,
    end: datetime,
    now: datetime,
) -> None:
    """Write the reservation's claims: one per cloud, over [start, end)."""
    rows: list[dict[str, Any]] = []
    for share in shares:
        rows.append(
            claim_row(
                clouds[share.cloud],
                reservation_id=reservation_id,
                vcpus=size.vcpus * share.amount,
                ram_mb=size.ram_mb * share.amount,
                disk_gb=size.disk_gb * share.amount,
                instances=share.amount,
                price_per_hour_micros=offered[share.cloud].price_per_hour_micros * share.amount,
                now=now,
                starts_at=start,
                ends_at=end,
            )
        )
    if rows:
        await s.execute(insert(Claim), rows)
