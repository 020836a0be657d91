"""The clouds' counters kept equal to their counted claims, at the cost of what changed.

Each claim says whether its cloud's counters hold it (`counted`); the counters are the sums
of the counted claims. Whatever adds, drops or flips a claim moves the counters by that
claim's amounts in the same transaction, so no step reads the fleet's claims:

- `claim_row` counts a claim in use when it is written (store/claims.py);
- `drop` deletes claims and gives back what the counted ones held;
- `settle` flips a few reservations' claims whose window has started or ended since they
  were last looked at (a lease's boot, start, move): `UPDATE ... WHERE counted <> in use
  RETURNING` their amounts, so two steps never count one claim twice (the second waits
  for the first's row lock on PostgreSQL, then finds nothing left to flip);
- `apply` moves the counters by those amounts, one relative UPDATE per cloud in name
  order, where a recount used to stand.

`repair` is housekeeping's check for drift (a bug, a hand-edited row): one SELECT reads
both the counted sums and the counters, so they come from one snapshot (even under READ
COMMITTED), and the drift is computed outside any write transaction; a short write then
adds it (`counter = counter + drift`), keeping what committed after the snapshot, fenced by
`counters_repaired` so two repairs from the same snapshot cannot both apply.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import astuple, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, not_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.store.claims import COUNTERS, Usage
from canopy.store.db import Database
from canopy.store.models import Claim, Cloud

log = logging.getLogger("canopy.claims")

AMOUNTS = tuple(getattr(Claim, amount) for _, amount in COUNTERS)


class Deltas:
    """How much each cloud's counters move: what a step added less what it gave back."""

    def __init__(self) -> None:
        self.by_cloud: dict[str, list[int]] = {}

    def add(self, rows: Iterable[Sequence[Any]], sign: int = 1) -> Deltas:
        """Add rows (cloud, vcpus, ram_mb, instances, price) times `sign`."""
        for cloud, *amounts in rows:
            moved = self.by_cloud.setdefault(cloud, [0] * len(COUNTERS))
            for i, a in enumerate(amounts):
                moved[i] += sign * int(a)
        return self

    def merge(self, other: Deltas) -> Deltas:
        return self.add(([c, *m] for c, m in other.by_cloud.items()))

    def of(self, cloud: str) -> Usage:
        return Usage(*self.by_cloud.get(cloud, [0] * len(COUNTERS)))


def now_in_use(now: datetime) -> ColumnElement[bool]:
    """The claim's window [starts_at, ends_at) contains `now`."""
    return and_(Claim.starts_at <= now, or_(Claim.ends_at.is_(None), Claim.ends_at > now))


async def drop(s: AsyncSession, *where: ColumnElement[bool]) -> Deltas:
    """Delete the claims matching `where`; the counters they held, to give back."""
    rows = await s.execute(
        delete(Claim).where(*where).returning(Claim.cloud, Claim.counted, *AMOUNTS)
    )
    return Deltas().add(((c, *a) for c, counted, *a in rows if counted), sign=-1)


async def settle(s: AsyncSession, reservation_ids: Iterable[str], now: datetime) -> Deltas:
    """Count the reservations' claims in use at `now` and stop counting those that are
    not (their window has not started, or is over); the counters' moves, to `apply`."""
    ids = sorted(set(reservation_ids))
    out = Deltas()
    if not ids:
        return out
    mine = Claim.reservation_id.in_(ids)
    for counted, sign in ((False, 1), (True, -1)):
        flips = now_in_use(now) if not counted else not_(now_in_use(now))
        rows = await s.execute(
            update(Claim)
            .where(mine, Claim.counted.is_(counted), flips)
            .values(counted=not counted)
            .returning(Claim.cloud, *AMOUNTS)
            .execution_options(synchronize_session=False)
        )
        out.add(rows, sign)
    return out


async def apply(s: AsyncSession, deltas: Deltas) -> None:
    """Move the counters by `deltas`: one relative UPDATE per cloud that moves, in name
    order (as placement locks them); Cloud rows loaded in the session follow."""
    for cloud in sorted(deltas.by_cloud):
        moved = deltas.by_cloud[cloud]
        if not any(moved):
            continue
        await s.execute(
            update(Cloud)
            .where(Cloud.name == cloud)
            .values(
                {
                    getattr(Cloud, counter): getattr(Cloud, counter) + d
                    for (counter, _), d in zip(COUNTERS, moved, strict=True)
                }
            )
        )


async def settle_and_apply(s: AsyncSession, reservation_ids: Iterable[str], now: datetime) -> None:
    await apply(s, await settle(s, reservation_ids, now))


def drift_query() -> Any:
    """Each cloud's counters, counted sums and repair fence, in one statement (one
    snapshot): rows (name, repaired, *counters, *sums)."""
    sums = (
        select(
            Claim.cloud,
            *(func.sum(a).label(n) for (n, _), a in zip(COUNTERS, AMOUNTS, strict=True)),
        )
        .where(Claim.counted.is_(True))
        .group_by(Claim.cloud)
        .subquery("sums")
    )
    return (
        select(
            Cloud.name,
            Cloud.counters_repaired,
            *(getattr(Cloud, n) for n, _ in COUNTERS),
            *(func.coalesce(sums.c[n], 0) for n, _ in COUNTERS),
        )
        .outerjoin(sums, sums.c.cloud == Cloud.name)
        .order_by(Cloud.name)
    )


@dataclass(frozen=True, slots=True)
class Drift:
    """A cloud's counters and the sums of its counted claims, from one snapshot."""

    cloud: str
    repairs: int  # the fence: `counters_repaired` as the snapshot saw it
    kept: Usage
    counted: Usage

    @property
    def by(self) -> list[int]:
        return [u - k for k, u in zip(astuple(self.kept), astuple(self.counted), strict=True)]


async def drifts(s: AsyncSession) -> list[Drift]:
    """Every cloud whose counters differ from its counted claims (a read: no lock)."""
    n = len(COUNTERS)
    out = []
    for name, seen, *values in await s.execute(drift_query()):
        kept, counted = Usage(*map(int, values[:n])), Usage(*map(int, values[n:]))
        if kept != counted:
            out.append(Drift(name, int(seen), kept, counted))
    return out


async def fix(s: AsyncSession, d: Drift) -> bool:
    """Add `d`'s drift to the cloud's counters (a short write), unless another repair
    applied since its snapshot; whether it did."""
    done = await s.execute(
        update(Cloud)
        .where(Cloud.name == d.cloud, Cloud.counters_repaired == d.repairs)
        .values(
            {
                getattr(Cloud, counter): getattr(Cloud, counter) + by
                for (counter, _), by in zip(COUNTERS, d.by, strict=True)
            }
            | {Cloud.counters_repaired: Cloud.counters_repaired + 1}
        )
        .execution_options(synchronize_session=False)
    )
    if getattr(done, "rowcount", 0) != 1:
        return False
    log.warning(
        "counters of cloud %s were %s, its counted claims %s: corrected", d.cloud, d.kept, d.counted
    )
    return True


async def repair(db: Database) -> list[Drift]:
    """Repair every cloud whose counters drifted from its counted claims: one read for
    all of them, then a short write per cloud that drifted; the drifts repaired."""
    async with db.read() as s:
        found = await drifts(s)
    fixed = []
    for d in found:
        async with db.session() as s:
            if await fix(s, d):
                fixed.append(d)
    return fixed
