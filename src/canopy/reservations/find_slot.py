"""`POST /canopy/v1/leases/find-slot` and `canopy lease find-slot`: the request, validated,
and the search run against the store (reads only: nothing is held).

The body:

    {"flavor": "m1.small",          # a public flavor's id or name; or instead
     "vcpus": 2, "memory_mb": 4096, "disk_gb": 20,   # a size, as virtual:instance has it
     "count": 10,                   # servers (1..10,000)
     "duration": "8h",              # whole minutes: "90m", "8h", "2d", "1d12h"
     "after": "2026-12-01 09:00",   # UTC, Blazar's format, or "now" (the default)
     "before": "2026-12-08 09:00",  # default: a week after `after`; at most a year after it
     "affinity": false}             # true: all on one cloud (as a reservation's affinity)
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.config import Settings
from canopy.domain.errors import Conflict, InvalidRequest
from canopy.domain.placement import CloudSnapshot
from canopy.reservations import capacity
from canopy.reservations.dates import parse_date
from canopy.reservations.requests import AMOUNT_MAX
from canopy.reservations.slot_pages import paged_search
from canopy.reservations.slots import (
    MAX_SPANS,
    SLOT_FLAVOR,
    Slot,
    SlotAnswer,
    SlotQuery,
    ceil_minute,
    floor_minute,
    shortfall,
    with_usage,
)
from canopy.reservations.timeline import Span, instant, micros
from canopy.store.claims import Usage, peaks_by_cloud
from canopy.store.models import Claim, Cloud
from canopy.store.snapshots import cloud_snapshot

MAX_RANGE = timedelta(days=366)
DEFAULT_RANGE = timedelta(days=7)
FIELDS = frozenset(
    {"flavor", "vcpus", "memory_mb", "disk_gb", "count", "duration", "after", "before", "affinity"}
)
_PART = re.compile(r"(\d{1,6})([dhm])")
_UNITS = {"d": 1440, "h": 60, "m": 1}


def parse_duration(value: Any) -> timedelta:
    """A length as "8h", "90m", "2d" or "1d12h" (whole minutes, at least one)."""
    text = value.strip().lower() if isinstance(value, str) else ""
    parts = _PART.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise InvalidRequest(
            f"duration must be a length like 90m, 8h, 2d or 1d12h, got {value!r:.40}."
        )
    minutes = sum(int(n) * _UNITS[u] for n, u in parts)
    if minutes < 1:
        raise InvalidRequest("duration must be at least a minute.")
    return timedelta(minutes=minutes)


def _whole(b: dict[str, Any], key: str, low: int, high: int, default: int | None = None) -> int:
    value = b.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{key} must be a whole number, got {value!r:.40}.")
    if not low <= value <= high:
        raise InvalidRequest(f"{key} must be between {low} and {high}, got {value}.")
    return value


def parse_query(body: Any, now: datetime) -> SlotQuery:
    """A find-slot body, validated: 400 naming the field that is wrong."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise InvalidRequest(
            f"Unknown field {unknown[0]!r:.40}; expected {', '.join(sorted(FIELDS))}."
        )
    amount = _whole(body, "count", 1, AMOUNT_MAX, default=1)
    duration = parse_duration(body.get("duration"))
    after = parse_date(body.get("after", "now"), "after", now)
    before = (
        parse_date(body["before"], "before", now) if "before" in body else after + DEFAULT_RANGE
    )
    if before - after > MAX_RANGE:
        raise InvalidRequest(f"The range from after to before is at most {MAX_RANGE.days} days.")
    if duration > before - after:
        raise InvalidRequest("The duration is longer than the range from after to before.")
    affinity = body.get("affinity")
    if affinity is not None and not isinstance(affinity, bool):
        raise InvalidRequest("affinity must be true, false or null.")
    flavor = body.get("flavor")
    sized = [k for k in ("vcpus", "memory_mb", "disk_gb") if k in body]
    if flavor is not None:
        if sized:
            raise InvalidRequest(f"Give a flavor or a size, not both (got flavor and {sized[0]}).")
        if not isinstance(flavor, str) or not flavor.strip() or len(flavor) > 255:
            raise InvalidRequest("flavor must be a flavor's id or name.")
        return SlotQuery(amount, duration, after, before, affinity, flavor=flavor)
    if "vcpus" not in body or "memory_mb" not in body:
        raise InvalidRequest("Give a flavor, or a size: vcpus and memory_mb (disk_gb optional).")
    return SlotQuery(
        amount,
        duration,
        after,
        before,
        affinity,
        vcpus=_whole(body, "vcpus", 1, 4096),
        memory_mb=_whole(body, "memory_mb", 1, 64 * 1024 * 1024),
        disk_gb=_whole(body, "disk_gb", 0, 1024 * 1024, default=0),
    )


async def spans_in(
    s: AsyncSession, start: datetime, end: datetime, *, starting_from: datetime | None = None
) -> list[Span]:
    """The claims overlapping [start, end), on any cloud, as spans (what `slots.search`
    sweeps; the tests' oracle for the paged search); with `starting_from`, only those
    that start at or after it."""
    q = select(
        Claim.cloud,
        Claim.starts_at,
        Claim.ends_at,
        Claim.vcpus,
        Claim.ram_mb,
        Claim.instances,
        Claim.price_per_hour_micros,
    ).where(or_(Claim.ends_at.is_(None), Claim.ends_at > start), Claim.starts_at < end)
    if starting_from is not None:
        q = q.where(Claim.starts_at >= starting_from)
    # Row by row (each row object freed at once), into plain tuples the collector untracks.
    return [
        (c, micros(a), None if b is None else micros(b), (int(v), int(r), int(n), int(m)))
        for c, a, b, v, r, n, m in await s.execute(q.limit(MAX_SPANS + 1))
    ]


async def first_start(
    s: AsyncSession,
    base: dict[str, CloudSnapshot],
    query: SlotQuery,
    size: capacity.Size,
    settings: Settings,
    now: datetime,
) -> SlotAnswer | None:
    """The answer when the range's first start is accepted, else None (the sweep's turn).

    Most searches are answered there. Its peaks come from the store's own sweep query
    (`peaks_by_cloud`, what a lease create asks), so none of the claims under the window
    is read into the process: the same peaks `search` computes for that start, and the
    same placement, so the same answer (the first start is the earliest: no other start
    needs checking).
    """
    earliest = ceil_minute(micros(max(query.after, now)))
    latest = floor_minute(micros(query.before - query.duration))
    if earliest > latest:
        return None
    start = instant(earliest)
    end = start + query.duration
    peaks = await peaks_by_cloud(s, sorted(base), start, end)
    snaps = {
        name: with_usage(c, (u.vcpus, u.ram_mb, u.instances, u.spend_micros))
        for name, c in base.items()
        for u in (peaks[name],)
    }
    cap = settings.scheduler.max_spend_per_hour_micros
    if shortfall(snaps, size, query.amount, query.affinity, cap) is not None:
        return None  # cannot fit: the sweep runs the placement there for its reason
    try:
        shares = capacity.place(snaps, size, query.amount, query.affinity, settings, "find-slot")
    except Conflict:
        return None
    prices = {sh.cloud: base[sh.cloud].price_per_hour_micros[size.flavor] for sh in shares}
    return SlotAnswer(
        slot=Slot(start, end, shares, prices),
        earliest=start,
        latest=instant(latest),
        candidates=1,
        examined=1,
        complete=True,
        searched_until=start,
        reason="",
        decisions=query.amount * (len(base) if query.affinity else 1),
    )


async def sized(s: AsyncSession, query: SlotQuery) -> tuple[capacity.Size, str | None]:
    """The searched size, and the public flavor it is (None: a size given outright)."""
    if query.flavor is not None:
        f = await capacity.public_flavor(s, query.flavor)
        return capacity.Size(SLOT_FLAVOR, f.vcpus, f.ram_mb, f.disk_gb), f.id
    return capacity.Size(SLOT_FLAVOR, query.vcpus, query.memory_mb, query.disk_gb), None


async def empty_snapshots(
    s: AsyncSession, size: capacity.Size, source: str | None, now: datetime
) -> dict[str, CloudSnapshot]:
    """Every cloud as a snapshot with nothing claimed, priced for `size` where offered."""
    offered = await capacity.offers(s, size, source)
    clouds = (await s.execute(select(Cloud).order_by(Cloud.name))).scalars()
    return {
        c.name: cloud_snapshot(
            c,
            now,
            Usage(),
            price_per_hour_micros={}
            if c.name not in offered
            else {size.flavor: offered[c.name].price_per_hour_micros},
            images=None,
        )
        for c in clouds
    }


async def find_slot(
    s: AsyncSession, settings: Settings, now: datetime, body: Any
) -> tuple[SlotQuery, capacity.Size, SlotAnswer]:
    """Validate `body` and search the store's claims for the earliest slot."""
    query = parse_query(body, now)
    size, source = await sized(s, query)
    base = await empty_snapshots(s, size, source, now)
    first = await first_start(s, base, query, size, settings, now)
    if first is not None:
        return query, size, first
    # The range is read a page at a time in time order, as usage steps the database
    # computes, with a bound on the rows read (slot_pages.py): most searches find a slot
    # near its start, and a range with none costs at most that bound.
    return query, size, await paged_search(s, base, query, size, settings, now)
