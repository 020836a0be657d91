"""Each cloud's usage over a window as a step function, computed by the database.

The free-slot search sweeps usage over time. Reading every claim under a range into the
process made its cost grow with the claims (the open-ended claims of every server
included); here the database does the sweep `peaks_by_cloud` does (what is in use at `start`, from
the counters corrected by the few claims they differ on, then +amount at each claim's
start and -amount at each end inside the window, summed per instant, a running sum per
cloud in time order: store/claim_sweep.py) and returns the steps themselves instead of
their maximum: one row per cloud and instant where its usage changes, however many claims
start or end there. The claims in use at `start` collapse into its first row.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.store import claim_sweep
from canopy.store.claim_sweep import NAMES

# (cloud, at, used, ends): from `at` on (until the cloud's next row) `used` (vcpus, ram_mb,
# instances, price per hour) is in use on `cloud`; `ends` claims end at `at` (usage can
# drop there, whatever the net change). A plain tuple of atoms, which the garbage
# collector stops tracking (see reservations/timeline.py's Span).
StepRow = tuple[str, datetime, tuple[int, int, int, int], int]


def steps_query(clouds: Sequence[str], start: datetime, end: datetime, limit: int) -> Any:
    """The statement behind `usage_steps`: rows (c, t, v, r, n, m, e) in time order."""
    events = claim_sweep.events(clouds, start, end)
    steps = (
        select(
            events.c.c,
            events.c.t,
            *(func.sum(events.c[n]).label(n) for n in NAMES),
            func.sum(events.c.e).label("e"),
        )
        .group_by(events.c.c, events.c.t)
        # A cloud's usage at `start` is a row only if it holds something then: a zero row
        # means what no row does, and would take a row of the caller's budget.
        .having(or_(func.min(events.c.s) == 0, *(func.sum(events.c[n]) != 0 for n in NAMES)))
        .subquery("steps")
    )
    return (
        select(
            steps.c.c,
            steps.c.t,
            *(
                func.sum(steps.c[n]).over(partition_by=steps.c.c, order_by=steps.c.t).label(n)
                for n in NAMES
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
