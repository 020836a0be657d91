"""When to look for a boot's end: each cloud's recent boot times, and the passes asked of sync.

A create recorded on a cloud asks sync for a pass soon (so the cloud polls at its
converging interval), and, once the cloud's boot time is known, for passes around the
moment the boot is expected to end: the server is then seen ACTIVE right after it boots,
instead of up to a converging interval later. The boot time is learned from what sync
sees: for each server it sees turn ACTIVE, the time from its create being recorded to the
middle of the span between the pass that saw it running and the pass before. A worker
that has seen none on a cloud yet (just started) reads the cloud's most recent boots from
the record once.

A pass that did not see a boot whose last look has come asks for another (`look_again`,
AGAIN after that look, ever later) instead of leaving it to the converging interval. A
pass also asks for the looks still ahead of the converging creates recorded before this
worker knew the cloud's boot time (`looks_after_pass`): they asked for none.

Nothing here polls: the asked passes are times the sync loop's wait ends at.
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections import deque
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import select

from canopy.domain.specs import RemoteServer
from canopy.domain.states import Phase
from canopy.store.db import Database
from canopy.store.models import Server
from canopy.store.plans import rare, unindexed

KEEP = 50  # boot times kept per cloud
STEP = 0.1  # seconds between the passes asked around a boot's expected end
ASKS = 5  # passes asked per recorded batch of creates, at most
RECENT = 500  # the most recently updated rows a warm start reads, at most
SPREAD = 0.05  # seconds: asked passes closer than this are one pass
LATE = 0.02  # seconds after the p95 boot time the last look is asked for
# Seconds past its last look at which a boot no pass has seen yet is looked for again;
# past the last, the converging interval sees it.
AGAIN = (0.05, 0.15, 0.35, 0.75)
GAP = 0.05  # seconds: a pass asked for starts this long after the cloud's last one, at least


class BootTimes:
    """Recent boot times per cloud: recorded create -> first seen running (seconds)."""

    def __init__(self) -> None:
        self._seen: dict[str, deque[float]] = {}
        self._read: set[str] = set()  # clouds whose history was read from the record
        self._since: dict[str, datetime] = {}  # when this worker first had looks for a cloud

    def observe(self, cloud: str, seconds: float) -> None:
        if seconds >= 0:
            self._seen.setdefault(cloud, deque(maxlen=KEEP)).append(seconds)

    def booted(
        self,
        cloud: str,
        recorded: datetime | None,
        seen: datetime,
        before: datetime | None,
        *,
        requested: datetime | None = None,
        cloud_took: float | None = None,
    ) -> None:
        """A server whose create was recorded at `recorded` was seen running by the pass
        that started at `seen`; the cloud's pass before that one started at `before`.

        Its boot ended between the later of `recorded` and `before` and `seen`: the middle
        of that is the sample, so a slow pass (a converging interval after the boot) does
        not teach a boot time as slow as itself. A row adopted by the pass (recorded after
        it started) is no sample.

        `cloud_took`, when the cloud reports it (its own `updated_at - created_at` for a
        server first seen running: both on the cloud's clock, so no skew), narrows that
        span: the cloud made the server during the create call, between `requested` (the
        call's start) and `recorded` (after its answer), so its boot ended between
        `cloud_took` after the one and `cloud_took` after the other. The span of a pass
        is as wide as the gap between passes; this one, as wide as the create call. The
        sample is then the span's end, when the boot had ended at the latest: the cloud
        makes a server late in the call (the call's time is mostly the wait before it
        is sent, the cloud's latency, and the record's batching after its answer), so
        the middle of the span came 40-60 ms before the boots it was to see
        (bench/burst.py), and a look at it missed them.
        """
        if recorded is None or recorded > seen:
            return
        low = before if before is not None and recorded < before <= seen else recorded
        lo, hi = (low - recorded).total_seconds(), (seen - recorded).total_seconds()
        if cloud_took is not None and cloud_took >= 0:
            call = (recorded - requested).total_seconds() if requested is not None else None
            if call is not None and call >= 0:
                a, b = max(lo, cloud_took - call), min(hi, cloud_took)
                if a <= b:  # else the cloud's times say something odd: keep the pass's span
                    self.observe(cloud, b)
                    return
        self.observe(cloud, (lo + hi) / 2)

    def saw_boot(
        self, cloud: str, row: Server, remote: RemoteServer, seen: datetime, before: datetime | None
    ) -> None:
        """`row`'s server, listed as `remote`, was first seen running by the pass at `seen`."""
        took = None
        if remote.created_at is not None and remote.updated_at is not None:
            took = (remote.updated_at - remote.created_at).total_seconds()
        self.booted(
            cloud,
            row.remote_recorded_at,
            seen,
            before,
            requested=row.create_requested_at,
            cloud_took=took,
        )

    def known(self, cloud: str) -> list[float]:
        return sorted(self._seen.get(cloud, ()))

    def known_since(self, cloud: str) -> datetime | None:
        """When this worker first had looks for `cloud` (`looks(..., at=)`): a create it
        recorded before then asked for none."""
        return self._since.get(cloud)

    async def looks(self, db: Database, cloud: str, *, at: datetime | None = None) -> list[float]:
        """Seconds after a create is recorded at which sync should look for its boot's end:
        from a step before the median boot time until just past the p95 (LATE after it),
        evenly spread, a step (and LATE) apart at most, ASKS at most. The look before
        the median lets the learned time come down when the cloud boots faster than it did
        (a pass sees only boots that ended before it started, so times learned from passes
        alone are never early); the last look, past the p95, sees the slow boots of the
        batch, which would otherwise wait for the converging interval. None with no boot to
        go by."""
        expected = await self.expected(db, cloud)
        if expected is None:
            return []
        if at is not None:
            self._since.setdefault(cloud, at)
        median, p95 = expected
        first = max(0.0, median - STEP)
        last = max(first + STEP, p95 + LATE)
        n = min(ASKS, 1 + math.ceil((last - first) / (STEP + LATE) - 1e-9))
        step = (last - first) / (n - 1)
        return [first + i * step for i in range(n)]

    async def expected(self, db: Database, cloud: str) -> tuple[float, float] | None:
        """(median, p95) of the cloud's recent boot times; None with none to go by."""
        if cloud not in self._seen and cloud not in self._read:
            self._read.add(cloud)
            for seconds in await _history(db, cloud):
                self.observe(cloud, seconds)
        took = self.known(cloud)
        if not took:
            return None
        p95 = took[min(len(took) - 1, max(0, -(-95 * len(took) // 100) - 1))]
        return statistics.median(took), p95


async def look_again(db: Database, cloud: str, started: datetime, last: float) -> datetime | None:
    """When to look again for the boots that a pass over `cloud`, started at `started`,
    should have seen and did not: servers still converging whose last look (`last`
    seconds after their create was recorded) came before that pass. Each is looked for
    AGAIN after its last look, an ever longer wait, until the converging interval takes
    over; the earliest such time, or None. One read of the few converging rows (the
    phase index); the creates of a batch share their recorded time."""
    newest = started - timedelta(seconds=last)  # recorded by then: its last look is past
    times = await _converging_recorded(db, cloud, newest - timedelta(seconds=AGAIN[-1]), newest)
    return _again(times, started, last)


async def looks_after_pass(
    db: Database, cloud: str, started: datetime, looks: list[float], unasked: datetime | None
) -> list[datetime]:
    """The passes to ask for after a pass over `cloud` that started at `started`, while
    something there converges, with `looks` the cloud's looks (`BootTimes.looks`, not
    empty): the earliest look again (`look_again`), and the looks still ahead of the
    converging creates recorded by `unasked` (`BootTimes.known_since`).

    Those creates were recorded before this worker knew the cloud's boot time (a cloud's
    first burst, or a worker just started: its asks were lost with it), so they asked for
    no look, and their boots would otherwise be seen a converging interval late. Creates
    recorded since asked for theirs when recorded, from the boot times known then: they
    are not asked again, since the estimate moves with every boot seen and looks asked
    again from a newer one would be passes of their own. Record times within SPREAD of
    each other are one (`SyncAsks` would merge their looks anyway), so the asks stay
    bounded by the window, not by the burst. One read of the few converging rows (the
    phase index), as `look_again`'s.
    """
    last = looks[-1]
    newest = started - timedelta(seconds=last)
    until = newest if unasked is None else max(newest, unasked)
    times = await _converging_recorded(db, cloud, newest - timedelta(seconds=AGAIN[-1]), until)
    blind = [t for t in times if t <= unasked] if unasked is not None else []
    out = [at for r in _spread(blind) for s in looks if (at := r + timedelta(seconds=s)) > started]
    again = _again(times, started, last)
    if again is not None:
        out.append(again)
    return sorted(out)


async def _converging_recorded(
    db: Database, cloud: str, oldest: datetime, newest: datetime
) -> list[datetime]:
    """The distinct record times of `cloud`'s converging creates recorded in (`oldest`,
    `newest`]."""
    async with db.read() as s:
        recorded = await s.scalars(
            select(Server.remote_recorded_at)
            .where(
                rare(Server.phase == Phase.CONVERGE),
                unindexed(Server.cloud) == cloud,
                Server.remote_recorded_at > oldest,
                Server.remote_recorded_at <= newest,
            )
            .distinct()
        )
        return [r for r in recorded if r is not None]


def _spread(times: Iterable[datetime]) -> list[datetime]:
    """`times`, those within SPREAD of the next kept one dropped: the latest of each run."""
    near = timedelta(seconds=SPREAD)
    kept: list[datetime] = []
    for t in sorted(times, reverse=True):
        if not kept or kept[-1] - t > near:
            kept.append(t)
    return kept


def _again(times: list[datetime], started: datetime, last: float) -> datetime | None:
    """`look_again`'s answer from the converging rows' record times."""
    newest = started - timedelta(seconds=last)  # recorded by then: its last look is past
    asks = []
    for r in times:
        if r > newest:
            continue  # its last look is still ahead
        late = (newest - r).total_seconds()  # how long past its last look that pass began
        wait = next((a for a in AGAIN if a > late), None)
        if wait is not None:
            asks.append(r + timedelta(seconds=last + wait))
    return min(asks, default=None)


async def _history(db: Database, cloud: str) -> list[float]:
    """Boot times of the cloud's servers among the most recently updated rows: a bounded
    read (the updated_at index, RECENT rows at most), whatever the fleet's size."""
    recent = (
        select(Server.cloud, Server.remote_recorded_at, Server.launched_at)
        .order_by(Server.updated_at.desc())
        .limit(RECENT)
        .subquery()
    )
    async with db.read() as s:
        rows = await s.execute(
            select(recent.c.remote_recorded_at, recent.c.launched_at).where(
                recent.c.cloud == cloud,
                recent.c.remote_recorded_at.is_not(None),
                recent.c.launched_at.is_not(None),
            )
        )
        return [
            (up - made).total_seconds()
            for made, up in rows
            if made is not None and up is not None and up >= made
        ][-KEEP:]


class SyncAsks:
    """The times a pass over each cloud has been asked for, earliest first.

    Asks closer than SPREAD are one pass, at the latest of them: a pass that comes a little
    late still sees the boots an earlier ask looked for, one that comes early does not see
    those of the later ask. A pass stays within SPREAD of the first ask it answers, so a
    burst of asks adds a pass per SPREAD at most.
    """

    def __init__(self) -> None:
        self._at: dict[str, list[datetime]] = {}
        self._first: dict[str, list[datetime]] = {}  # the first ask each pass answers

    def ask(self, cloud: str, at: datetime) -> None:
        times = self._at.setdefault(cloud, [])
        firsts = self._first.setdefault(cloud, [])
        i = bisect.bisect_left(times, at)
        near = timedelta(seconds=SPREAD)
        if i < len(times) and times[i] - at < near:
            return  # a pass that soon after is asked already: it answers this one
        if i > 0 and at - firsts[i - 1] < near:
            times[i - 1] = at  # the pass just before, moved to this ask (still in order)
            return
        times.insert(i, at)
        firsts.insert(i, at)

    def ask_by(self, cloud: str, at: datetime) -> None:
        """A pass at `at` or before: any pass asked for by then answers it (so creates
        recorded one after another ask for one pass a converging interval on, not one
        each)."""
        times = self._at.get(cloud)
        if times and times[0] <= at:
            return
        self.ask(cloud, at)

    def due(self, cloud: str, now: datetime) -> bool:
        times = self._at.get(cloud)
        return times is not None and bool(times) and times[0] <= now

    def served(self, cloud: str, now: datetime) -> None:
        """A pass has started at `now`: it answers every ask up to then."""
        times = self._at.get(cloud)
        if times:
            n = bisect.bisect_right(times, now)
            del times[:n], self._first[cloud][:n]
            if not times:
                del self._at[cloud], self._first[cloud]

    def heads(self, skip: set[str] | None = None) -> list[datetime]:
        """The first asked time of each cloud (but those in `skip`)."""
        return list(self.firsts(skip).values())

    def firsts(self, skip: set[str] | None = None) -> dict[str, datetime]:
        """The first asked time of each cloud (but those in `skip`), by cloud."""
        return {c: t[0] for c, t in self._at.items() if t and not (skip and c in skip)}

    def __contains__(self, cloud: str) -> bool:
        return bool(self._at.get(cloud))
