"""The events a usage sweep over [start, end) adds up, read without the fleet's claims.

A sweep (peak usage, a free-slot search's steps) adds every claim's amounts at the
instant it starts and takes them away where it ends, in time order. Most claims are
servers': open-ended, started long before the window, so each only adds its amounts at
`start`. Reading them all for that made every placement on a cloud with a reservation,
every lease create and every slot search cost what the fleet holds (about 50 ms at
10,000 servers, 500 ms at 100,000, inside the transaction that writes the claim).

What is in use at `start` is what the cloud's counters hold (the counted claims, kept by
store/claim_counts.py), corrected by the few claims whose `counted` differs from
"in use at `start`":

- plus the uncounted claims in use at `start` (a reservation's that has begun but not yet
  been settled, or that begins before a window in the future);
- less the counted claims not in use at `start` (ended but not yet settled or dropped, or
  ending before a window in the future; or, rarely, starting after it).

Both sets are small whenever `start` is close to now (a window in the past would make the
second one large, still exact: a started lease's update sweeps from now on for that).
Then the claims that start, and those that end, inside the window: reservations', not the
fleet's. Each part is one index range: `ix_claims_cloud_window` for starts,
`ix_claims_cloud_ends` for ends, `ix_claims_uncounted` (partial) for the uncounted ones.
All parts are one statement, so the counters and the claims come from one snapshot, even
under READ COMMITTED.

Rows (c, t, v, r, n, m, e, s): cloud, instant, the amounts moving there (vcpus, ram_mb,
instances, price per hour), how many claims end there, and 1 for what is in use at
`start` (every cloud of `clouds` has such rows, summing to zero when it holds nothing),
else 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, ColumnElement, literal, or_, select, union_all

from canopy.store.models import Claim, Cloud

NAMES = ("v", "r", "n", "m")
_AMOUNTS = (Claim.vcpus, Claim.ram_mb, Claim.instances, Claim.price_per_hour_micros)
_COUNTERS = (
    Cloud.vcpus_claimed,
    Cloud.ram_mb_claimed,
    Cloud.instances_claimed,
    Cloud.spend_per_hour_micros,
)


def uncounted() -> ColumnElement[bool]:
    """The predicate of `ix_claims_uncounted` (the same expression, or SQLite's planner
    would not see that the partial index answers it)."""
    return Claim.counted.is_(False)


def _at(cloud: Any, t: Any, amounts: Sequence[Any], sign: int, ends: int = 0) -> Any:
    """Rows (c, t, amounts times `sign`, e = `ends`, s = whether `t` is the start)."""
    return select(
        cloud.label("c"),
        t.label("t"),
        *((a if sign > 0 else -a).label(n) for a, n in zip(amounts, NAMES, strict=True)),
        literal(ends).label("e"),
        literal(int(isinstance(t, BindParameter))).label("s"),
    )


def events(
    clouds: Sequence[str] | BindParameter[Any],
    start: datetime | BindParameter[Any],
    end: datetime | BindParameter[Any] | None,
) -> Any:
    """The union of the sweep's events over [start, end) (end None: ever after). Each
    argument is a value, or a bound parameter for a statement built once (an expanding
    one for `clouds`; `start` typed as `Claim.starts_at`)."""
    mine = Claim.cloud.in_(clouds)
    at_start = start if isinstance(start, BindParameter) else literal(start, Claim.starts_at.type)
    live_at_start = or_(Claim.ends_at.is_(None), Claim.ends_at > start)
    before_end: list[ColumnElement[bool]] = [] if end is None else [Claim.starts_at < end]
    ends_before_end: list[ColumnElement[bool]] = [] if end is None else [Claim.ends_at < end]
    counters = _at(Cloud.name, at_start, _COUNTERS, 1).where(Cloud.name.in_(clouds))
    begun = _at(Claim.cloud, at_start, _AMOUNTS, 1).where(
        mine, uncounted(), Claim.starts_at <= start, live_at_start
    )
    not_begun = _at(Claim.cloud, at_start, _AMOUNTS, -1).where(
        mine, Claim.counted.is_(True), Claim.starts_at > start
    )
    # A claim ends after it starts (the reservations check it), so none is in both sets.
    over = _at(Claim.cloud, at_start, _AMOUNTS, -1).where(
        mine, Claim.counted.is_(True), Claim.ends_at <= start
    )
    starts = _at(Claim.cloud, Claim.starts_at, _AMOUNTS, 1).where(
        mine, Claim.starts_at > start, *before_end
    )
    ends = _at(Claim.cloud, Claim.ends_at, _AMOUNTS, -1, ends=1).where(
        mine, Claim.ends_at > start, *ends_before_end
    )
    # The claims' own instants first: PostgreSQL types a union's column from its members
    # in order, and two bare instants (as a plan shows them, literally) would make it text.
    return union_all(starts, ends, counters, begun, not_begun, over).subquery("events")
