"""Each cloud's usage over a window as a step function, computed by the database.

The free-slot search sweeps usage over time. Reading every claim under a range into the
process made its cost grow with the claims (the open-ended claims of every server
included); here the database does the sweep `peaks_by_cloud` does (every claim +amount at
max(starts_at, start), -amount at its end inside the window, summed per instant, a
running sum per cloud in time order) and returns the steps themselves instead of their
maximum: one row per cloud and instant where its usage changes, however many claims
start or end there. The claims that began before the window collapse into its first row.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, literal, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.store.models import Claim

_AMOUNTS = (Claim.vcpus, Claim.ram_mb, Claim.instances, Claim.price_per_hour_micros)
_NAMES = ("v", "r", "n", "m")


# (cloud, at, used, ends): from `at` on (until the cloud's next row) `used` (vcpus, ram_mb,
# instances, price per hour) is in use on `cloud`; `ends` claims end at `at` (usage can
# drop there, whatever the net change). A plain tuple of atoms, which the garbage
# collector stops tracking (see reservations/timeline.py's Span).
StepRow = tuple[str, datetime, tuple[int, int, int, int], int]


def steps_query(clouds: Sequence[str], start: datetime, end: datetime, limit: int) -> Any:
    """The statement behind `usage_steps`: rows (c, t, v, r, n, m, e) in time order."""
    when = case(
        (Claim.starts_at < start, literal(start, Claim.starts_at.type)),
        else_=Claim.starts_at,
    )
    overlap = and_(
        Claim.cloud.in_(clouds),
        or_(Claim.ends_at.is_(None), Claim.ends_at > start),
        Claim.starts_at < end,
    )
    starts = select(
        Claim.cloud.label("c"),
        when.label("t"),
        *(a.label(n) for a, n in zip(_AMOUNTS, _NAMES, strict=True)),
        literal(0).label("e"),
    ).where(overlap)
    ends = select(
        Claim.cloud.label("c"),
        Claim.ends_at.label("t"),
        *((-a).label(n) for a, n in zip(_AMOUNTS, _NAMES, strict=True)),
        literal(1).label("e"),
    ).where(overlap, Claim.ends_at.is_not(None), Claim.ends_at < end)
    events = union_all(starts, ends).subquery("events")
    steps = (
        select(
            events.c.c,
            events.c.t,
            *(func.sum(events.c[n]).label(n) for n in _NAMES),
            func.sum(events.c.e).label("e"),
        )
        .group_by(events.c.c, events.c.t)
        .subquery("steps")
    )
    return (
        select(
            steps.c.c,
            steps.c.t,
            *(
                func.sum(steps.c[n]).over(partition_by=steps.c.c, order_by=steps.c.t).label(n)
                for n in _NAMES
            ),
            steps.c.e,
        )
        .order_by(steps.c.t, steps.c.c)
        .limit(limit)
    )


async def usage_steps(
    s: AsyncSession, clouds: Sequence[str], start: datetime, end: datetime, limit: int
) -> list[StepRow]:
    """The steps of each of `clouds` over [start, end), in time order, at most `limit`
    rows (the earliest). Each cloud's usage before its first row is nothing."""
    if not clouds:
        return []
    return [
        (str(c), t, (int(v), int(r), int(n), int(m)), int(e))
        for c, t, v, r, n, m, e in await s.execute(steps_query(clouds, start, end, limit))
    ]
