"""Capacity claims over time, and the cloud counters that cache the claims in use now.

A claim holds vcpus, ram, instances and a price per hour on one cloud over a half-open
window [starts_at, ends_at) (`ends_at` NULL: open-ended), for a server or a reservation.

- `peak_usage` answers "the most in use at any moment of [start, end)": one query, a
  sweep from what the counters hold at `start` over the claims that start or end inside
  the window (store/claim_sweep.py), never over the fleet's open-ended claims.
- The cloud's `*_claimed` and `spend_per_hour_micros` counters are the sums of its claims
  marked `counted`; they move in the transaction that adds, drops or flips a claim, by
  that claim's amounts (store/claim_counts.py), never by a recount of the whole fleet.

A server's claim starts when it is placed and stays open until released, so it is always
in use and always counted. A claim whose window starts later (a reservation's) is counted
when the lease step that opens its window settles it (`claim_counts.settle`); `recount`
rebuilds whole clouds from their claims and is for tests and repairs by hand only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.store import claim_sweep
from canopy.store.models import Claim, Cloud

# (counter on the cloud, the claim's amount it sums)
COUNTERS = (
    ("vcpus_claimed", "vcpus"),
    ("ram_mb_claimed", "ram_mb"),
    ("instances_claimed", "instances"),
    ("spend_per_hour_micros", "price_per_hour_micros"),
)


@dataclass(frozen=True, slots=True)
class Usage:
    """Capacity and spend held on a cloud (or summed over clouds), all integers."""

    vcpus: int = 0
    ram_mb: int = 0
    instances: int = 0
    spend_micros: int = 0


def in_use(starts_at: datetime, ends_at: datetime | None, at: datetime) -> bool:
    """Whether a claim's window [starts_at, ends_at) contains the instant `at`."""
    return starts_at <= at and (ends_at is None or ends_at > at)


def add_claim(
    s: AsyncSession,
    cloud: Cloud,
    *,
    server_id: str | None = None,
    reservation_id: str | None = None,
    vcpus: int,
    ram_mb: int,
    disk_gb: int,
    price_per_hour_micros: int,
    now: datetime,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    instances: int = 1,
) -> Claim:
    """Hold capacity on `cloud` (a row locked by the caller); see `claim_row`."""
    claim = Claim(
        **claim_row(
            cloud,
            server_id=server_id,
            reservation_id=reservation_id,
            vcpus=vcpus,
            ram_mb=ram_mb,
            disk_gb=disk_gb,
            price_per_hour_micros=price_per_hour_micros,
            now=now,
            starts_at=starts_at,
            ends_at=ends_at,
            instances=instances,
        )
    )
    s.add(claim)
    return claim


def claim_row(
    cloud: Cloud,
    *,
    server_id: str | None = None,
    reservation_id: str | None = None,
    vcpus: int,
    ram_mb: int,
    disk_gb: int,
    price_per_hour_micros: int,
    now: datetime,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    instances: int = 1,
) -> dict[str, Any]:
    """A claim's row for a bulk insert, moving `cloud`'s counters if it is in use now.

    Exactly one of `server_id` / `reservation_id`; the window defaults to now -> open,
    a server's.
    """
    if (server_id is None) == (reservation_id is None):
        raise ValueError("a claim belongs to exactly one server or reservation")
    start = now if starts_at is None else starts_at
    if ends_at is not None and ends_at <= start:
        raise ValueError(f"a claim's window must not be empty: {start} -> {ends_at}")
    row: dict[str, Any] = {
        "server_id": server_id,
        "reservation_id": reservation_id,
        "cloud": cloud.name,
        "vcpus": vcpus,
        "ram_mb": ram_mb,
        "disk_gb": disk_gb,
        "instances": instances,
        "price_per_hour_micros": price_per_hour_micros,
        "starts_at": start,
        "ends_at": ends_at,
        "created_at": now,
        "counted": in_use(start, ends_at, now),
    }
    if row["counted"]:
        for counter, amount in COUNTERS:
            setattr(cloud, counter, getattr(cloud, counter) + row[amount])
    return row


async def release_claim(s: AsyncSession, server_id: str) -> Claim | None:
    """Give back the server's claim, if it still holds one. Safe to call twice.

    A server's claim is always in use (placed now, open-ended), so the counters move.
    """
    row = (
        await s.execute(delete(Claim).where(Claim.server_id == server_id).returning(Claim))
    ).scalar_one_or_none()
    if row is None or not row.counted:
        return row
    await s.execute(
        update(Cloud)
        .where(Cloud.name == row.cloud)
        .values(
            {
                getattr(Cloud, counter): getattr(Cloud, counter) - getattr(row, amount)
                for counter, amount in COUNTERS
            }
        )
    )
    return row


def peak_usage_query(clouds: Sequence[str], start: datetime, end: datetime | None) -> Any:
    """The statement behind `peak_usage` (exposed for EXPLAIN in tests and by hand).

    Usage only rises when a claim starts, so the peak over [start, end) is reached at
    `start` or at a claim's start inside the window. The sweep: what is in use at
    `start` (the counters, corrected: store/claim_sweep.py), +amount at each claim's
    start inside the window and -amount at each end inside it; the events are summed per
    instant (an end and a start at the same instant cancel: windows are half-open), a
    running sum in time order gives the usage from each instant on, and its maximum is
    the peak. Each dimension peaks on its own.
    """
    return _sweep(clouds, start, end, per_cloud=False)


def peaks_by_cloud_query(clouds: Sequence[str], start: datetime, end: datetime | None) -> Any:
    """The statement behind `peaks_by_cloud`: the same sweep, run for each cloud apart
    (partitioned by cloud) in one statement; rows (cloud, v, r, n, m), none for a cloud
    with no claim over the window."""
    return _sweep(clouds, start, end, per_cloud=True)


@cache
def _sweep_once(*, per_cloud: bool, bounded: bool) -> Any:
    """The sweep for any clouds and window, built once per shape, its values bound at run
    time (`_window`). Built per call, one sweep left about 780 objects of cyclic garbage
    (its subqueries' column copies, labels and binds), and placement builds one on every
    pass with a reservation's claim ahead: most of what the collector had to free under
    load, in pauses of 10-40 ms (BENCHMARKS.md, session 20)."""
    clouds: BindParameter[Any] = bindparam("sweep_clouds", expanding=True)
    start = bindparam("sweep_start", type_=Claim.starts_at.type)
    end = bindparam("sweep_end", type_=Claim.starts_at.type) if bounded else None
    return _sweep(clouds, start, end, per_cloud=per_cloud)


def _window(clouds: Sequence[str], start: datetime, end: datetime | None) -> dict[str, Any]:
    values: dict[str, Any] = {"sweep_clouds": list(clouds), "sweep_start": start}
    if end is not None:
        values["sweep_end"] = end
    return values


def _sweep(clouds: Any, start: Any, end: Any, *, per_cloud: bool) -> Any:
    events = claim_sweep.events(clouds, start, end)
    names = claim_sweep.NAMES
    by = [events.c.c] if per_cloud else []
    steps = (
        select(*by, events.c.t, *(func.sum(events.c[n]).label(n) for n in names))
        .group_by(*by, events.c.t)
        .subquery("steps")
    )
    part = [steps.c.c] if per_cloud else []
    running = select(
        *part,
        *(
            func.sum(steps.c[n]).over(partition_by=part or None, order_by=steps.c.t).label(n)
            for n in names
        ),
    ).subquery("running")
    if not per_cloud:
        return select(*(func.coalesce(func.max(running.c[n]), 0) for n in names))
    return select(running.c.c, *(func.max(running.c[n]) for n in names)).group_by(running.c.c)


async def peaks_by_cloud(
    s: AsyncSession, clouds: Sequence[str], start: datetime, end: datetime | None = None
) -> dict[str, Usage]:
    """`peak_usage` of each of `clouds` on its own, in one statement (not one per cloud)."""
    out = {name: Usage() for name in clouds}
    if not clouds:
        return out
    query = _sweep_once(per_cloud=True, bounded=end is not None)
    for cloud, v, r, n, m in await s.execute(query, _window(clouds, start, end)):
        out[cloud] = Usage(int(v), int(r), int(n), int(m))
    return out


async def peak_usage(
    s: AsyncSession, clouds: Sequence[str], start: datetime, end: datetime | None = None
) -> Usage:
    """The most of each dimension in use at any moment of [start, end) (end None: ever
    after), summed over `clouds`."""
    if not clouds:
        return Usage()
    query = _sweep_once(per_cloud=False, bounded=end is not None)
    v, r, n, m = (await s.execute(query, _window(clouds, start, end))).one()
    return Usage(int(v), int(r), int(n), int(m))


async def usage_at(s: AsyncSession, clouds: Sequence[str], at: datetime) -> dict[str, Usage]:
    """What each of `clouds` has in use at the instant `at`: what its counters cache."""
    in_window: ColumnElement[bool] = and_(
        Claim.cloud.in_(clouds),
        Claim.starts_at <= at,
        or_(Claim.ends_at.is_(None), Claim.ends_at > at),
    )
    rows = await s.execute(
        select(
            Claim.cloud,
            func.sum(Claim.vcpus),
            func.sum(Claim.ram_mb),
            func.sum(Claim.instances),
            func.sum(Claim.price_per_hour_micros),
        )
        .where(in_window)
        .group_by(Claim.cloud)
    )
    out = {name: Usage() for name in clouds}
    for cloud, v, r, n, m in rows:
        out[cloud] = Usage(int(v), int(r), int(n), int(m))
    return out


async def recount(s: AsyncSession, clouds: Sequence[Cloud], now: datetime) -> None:
    """Set the counters of `clouds` (rows locked by the caller) to the claims in use now,
    marking those claims counted and no other.

    It reads every claim of the clouds inside the caller's write transaction (80-150 ms
    at 100,000 claims): tests and repairs by hand only. Steps use `claim_counts.settle`
    and `claim_counts.drop`; housekeeping's `claim_counts.repair` fixes drift.
    """
    names = [c.name for c in clouds]
    if not names:
        return
    now_in_use = and_(Claim.starts_at <= now, or_(Claim.ends_at.is_(None), Claim.ends_at > now))
    await s.execute(
        update(Claim)
        .where(Claim.cloud.in_(names))
        .values(counted=case((now_in_use, True), else_=False))
        .execution_options(synchronize_session=False)
    )
    used = await usage_at(s, names, now)
    for c in clouds:
        u = used[c.name]
        c.vcpus_claimed, c.ram_mb_claimed = u.vcpus, u.ram_mb
        c.instances_claimed, c.spend_per_hour_micros = u.instances, u.spend_micros


async def clouds_with_later_claims(s: AsyncSession, now: datetime) -> set[str]:
    """The clouds holding a claim that starts after `now` (one index seek per cloud).

    For every other cloud the peak over [now, forever) is what is in use now, which its
    counters already say.
    """
    later = exists().where(Claim.cloud == Cloud.name, Claim.starts_at > now)
    return set((await s.execute(select(Cloud.name).where(later))).scalars())
