"""The free-slot search: the earliest window of a length, within a range, where N servers
of a size could be reserved now, by the very rule a lease create applies.

A start s is *accepted* when `capacity.place` (the lease create's placement: filters,
weighers, burst policy, spend cap) succeeds over snapshots whose usage is each cloud's peak
over [s, s + L), the claims being those in the store. The search returns the earliest
accepted start, a whole minute (Blazar's dates are minutes).

Which starts need checking: the usage under a window only drops when the window's start
passes a claim's end. Between two such moments, moving the start later keeps every claim
in use at the old start in use at the new one and only lets more claims into the window's
end, so each cloud's peak can only rise: a start that is not the first minute of the
range, nor the first whole minute at or after a claim's end, is accepted only if the
candidate before it is. The search therefore checks the first minute and the minute of
each claim end in range, in order (a sliding-window peak per cloud, `timeline`), and
stops at the first accepted one. This is exact as long as less usage never makes the
placement fail, which holds for the pipeline's capacity and spend-cap filters (a
placement that fits, fits with less claimed); see docs/scheduling.md for the one caveat.

Each candidate first goes through `shortfall`, a necessary condition computed from the
snapshots alone (room per cloud, cheapest burst servers under the spend cap); only when it
passes is the full placement run; a refused start also refuses every later start whose
window still holds the peaks it saw (`_refused_to`), which are skipped. Work per request
is bounded: at most MAX_CANDIDATES starts and MAX_DECISIONS servers run through the
pipeline (and what is read, by slot_pages.MAX_STEP_ROWS); past a bound the answer says
how far it searched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from canopy.config import Settings
from canopy.domain.errors import Conflict
from canopy.domain.placement import CloudSnapshot
from canopy.reservations.capacity import Share, Size, place
from canopy.reservations.timeline import (
    CLOUD,
    END,
    MINUTE_US,
    SlidingPeak,
    Span,
    Steps,
    Vec,
    instant,
    micros,
)

MAX_CANDIDATES = 20_000  # starts examined per search
MAX_DECISIONS = 50_000  # servers run through the scheduling pipeline per search
MAX_SPANS = 100_000  # claims a search may read
MINUTE = timedelta(minutes=1)
SLOT_FLAVOR = "find-slot"  # the name the searched size goes by in the snapshots


@dataclass(frozen=True, slots=True)
class SlotQuery:
    """What is searched for: `amount` servers of a size for `duration`, in [after, before)."""

    amount: int
    duration: timedelta
    after: datetime
    before: datetime
    affinity: bool | None = None
    flavor: str | None = None  # a flavor's id or name, or None: the size below
    vcpus: int = 0
    memory_mb: int = 0
    disk_gb: int = 0


@dataclass(frozen=True, slots=True)
class Slot:
    """A window where the servers fit, and where they would be held."""

    start: datetime
    end: datetime
    shares: list[Share]
    price_per_hour_micros: dict[str, int]  # per server, on each cloud holding a share

    @property
    def cost_per_hour_micros(self) -> int:
        return sum(self.price_per_hour_micros[sh.cloud] * sh.amount for sh in self.shares)


@dataclass(frozen=True, slots=True)
class SlotAnswer:
    """The earliest slot, or none; and how far the search went."""

    slot: Slot | None
    earliest: datetime  # the first start looked at
    latest: datetime  # the last start the range allows
    candidates: int  # starts that needed checking
    examined: int  # of which examined
    complete: bool  # False: a bound stopped the search before `latest`
    searched_until: datetime | None  # the last start examined (slot_pages: see there)
    reason: str  # why the first start examined was refused ("" when it was accepted)
    decisions: int = 0  # servers run through the pipeline
    # Every start from `earliest` to this one is refused (None: none is known to be): the
    # candidates examined or skipped, the starts between them, and those past the last
    # refusal whose windows still hold the peaks it saw (`_refused_to`).
    refused_through: datetime | None = None


def ceil_minute(us: int) -> int:
    return -(-us // MINUTE_US) * MINUTE_US


def floor_minute(us: int) -> int:
    return us // MINUTE_US * MINUTE_US


def candidate_starts(spans: Sequence[Span], earliest: int, latest: int) -> list[int]:
    """The first minute of the range and the first minute at or after each claim end in
    it, in order (both `earliest` and `latest` are whole minutes)."""
    out = {ceil_minute(e) for sp in spans if (e := sp[END]) is not None and earliest < e <= latest}
    if earliest <= latest:
        out.add(earliest)
    return sorted(out)


def with_usage(c: CloudSnapshot, used: tuple[int, int, int, int]) -> CloudSnapshot:
    return replace(
        c,
        vcpus_claimed=used[0],
        ram_mb_claimed=used[1],
        instances_claimed=used[2],
        spend_per_hour_micros=used[3],
    )


def _room(c: CloudSnapshot, used: Vec, size: Size, most: int) -> int:
    """How many servers of `size` the cloud has room for beside `used` (at most `most`)."""
    room = most
    for cap, held, need in (
        (c.vcpus_capacity, used[0], size.vcpus),
        (c.ram_mb_capacity, used[1], size.ram_mb),
        (c.instances_capacity, used[2], 1),
    ):
        if cap is not None and need > 0:
            room = min(room, max(0, (cap - held) // need))
    return room


def shortfall(
    snaps: dict[str, CloudSnapshot], size: Size, amount: int, affinity: bool | None, cap: int
) -> str | None:
    """Why `amount` servers cannot all be placed, from the snapshots alone; None when they
    might. A necessary condition of `place` succeeding: each cloud it could choose passes
    the filters that do not depend on the request, and holds at most its room; servers on
    burst tiers (>= 1) cost at least the cheapest price there, within the spend cap."""
    used = {
        name: (c.vcpus_claimed, c.ram_mb_claimed, c.instances_claimed, c.spend_per_hour_micros)
        for name, c in snaps.items()
    }
    return shortfall_beside(snaps, used, size, amount, affinity, cap)


def shortfall_beside(
    base: dict[str, CloudSnapshot],
    used: dict[str, Vec],
    size: Size,
    amount: int,
    affinity: bool | None,
    cap: int,
) -> str | None:
    """`shortfall` of the clouds `base` with `used` in use on each (no snapshot made: the
    sweep asks this of every candidate, and most are refused here)."""
    burst_spend = sum(used[name][3] for name, c in base.items() if c.tier >= 1)
    headroom = cap - burst_spend
    private = 0
    burst: list[tuple[int, int]] = []  # (price, room) per burst cloud
    for name, c in base.items():
        price = c.price_per_hour_micros.get(size.flavor)
        usable = c.inventoried and c.enabled and not c.removed and c.healthy
        if price is None or not usable or c.blocklisted:
            continue
        room = _room(c, used[name], size, amount)
        if c.tier >= 1:
            room = min(room, headroom // price if price > 0 else room) if headroom >= 0 else 0
        if affinity and room >= amount:
            return None
        if c.tier < 1:
            private += room
        else:
            burst.append((price, room))
    if affinity:
        return f"no single cloud has room for all {amount} over the window"
    fit, spend = private, 0
    for price, room in sorted(burst):
        take = room if price == 0 else min(room, (headroom - spend) // price)
        if take <= 0:
            break
        fit += take
        spend += take * price
    if fit >= amount:
        return None
    return f"room for {fit} of {amount} over the window (capacity and spend cap)"


def _refused_to(peaks: dict[str, SlidingPeak], end: int) -> int:
    """After a start s is refused over [s, end): the last start also refused for the same
    reason. Each cloud's peak of each dimension in use is reached at its `held` instant or
    before; a later start s' <= every such instant still has them all in its window
    (they are before end <= s' + L), so its peaks are at least as high and it is refused
    too (more usage never makes the placement succeed: the rule the candidates rest on).
    Nothing in use anywhere: every later start is refused as well."""
    helds = [h for p in peaks.values() if (h := p.held) is not None]
    return min(helds) if helds else end + (1 << 62)


def search(
    base: dict[str, CloudSnapshot],
    spans: Sequence[Span],
    query: SlotQuery,
    size: Size,
    settings: Settings,
    now: datetime,
    max_decisions: int = MAX_DECISIONS,
    known: str = "",
) -> SlotAnswer:
    """The earliest accepted start in the query's range (pure: no I/O).

    `base` is every cloud as a snapshot with nothing claimed, priced for `size.flavor`
    where it is offered; `spans` are the claims overlapping the range. `known`: why the
    range's first start was refused, found by the search of an earlier slice.
    """
    earliest = ceil_minute(micros(max(query.after, now)))
    latest = floor_minute(micros(query.before - query.duration))
    by_cloud: dict[str, list[Span]] = {name: [] for name in base}
    for sp in spans:
        if (cloud := sp[CLOUD]) in by_cloud:
            by_cloud[cloud].append(sp)
    peaks = {name: SlidingPeak(Steps(by_cloud[name], earliest)) for name in base}
    starts = candidate_starts(spans, earliest, latest)
    return sweep(base, peaks, starts, earliest, latest, query, size, settings, max_decisions, known)


def sweep(
    base: dict[str, CloudSnapshot],
    peaks: dict[str, SlidingPeak],
    starts: Sequence[int],
    earliest: int,
    latest: int,
    query: SlotQuery,
    size: Size,
    settings: Settings,
    max_decisions: int = MAX_DECISIONS,
    known: str = "",
    max_candidates: int = MAX_CANDIDATES,
    horizon: int | None = None,
) -> SlotAnswer:
    """The first accepted start of `starts` (increasing candidates in [earliest, latest],
    whole minutes), each cloud's usage being `peaks` (pure: no I/O). At most
    `max_candidates` starts are examined and `max_decisions` servers placed.

    `horizon` (default `latest`): the last start the query allows, up to which
    `refused_through` may reach past `latest` (the peaks being exact up to
    `latest` + the duration, the refusals they prove hold past it)."""
    length = query.duration // timedelta(microseconds=1)
    cap = settings.scheduler.max_spend_per_hour_micros
    cost = query.amount * (len(base) if query.affinity else 1)  # decisions per placement
    decisions = 0
    reason = known
    refused_to = -1  # every start up to this instant is refused (see `_refused_to`)
    last = latest if horizon is None else horizon

    def answer(slot: Slot | None, examined: int, complete: bool) -> SlotAnswer:
        # Every start before the first one not yet decided is refused: each candidate
        # before it was refused (examined, or skipped up to `refused_to`), and a start
        # between two candidates is accepted only if the candidate before it is.
        undecided = latest + MINUTE_US if examined == len(starts) else starts[examined]
        if slot is not None:
            undecided = starts[examined - 1]
        through = min(last, max(undecided - MINUTE_US, floor_minute(refused_to)))
        return SlotAnswer(
            slot=slot,
            earliest=instant(earliest),
            latest=instant(latest),
            candidates=len(starts),
            examined=examined,
            complete=complete,
            searched_until=instant(starts[examined - 1]) if examined else None,
            reason=reason,
            decisions=decisions,
            refused_through=instant(through) if through >= earliest else None,
        )

    for k, start in enumerate(starts):
        if k >= max_candidates:
            return answer(None, k, complete=False)
        if start <= refused_to:
            continue
        end = start + length
        used = {name: peaks[name].peak(start, end) for name in base}
        short = shortfall_beside(base, used, size, query.amount, query.affinity, cap)
        if short is not None and (k or known):
            refused_to = _refused_to(peaks, end)
            continue
        if k and decisions + cost > max_decisions:
            # Checked here, not before the shortfall: a start refused by it costs no
            # placement, so the bound stops the search only where one would run.
            return answer(None, k, complete=False)
        # The first start always runs the pipeline (its reason is the news), unless an
        # earlier slice of the range already did.
        decisions += cost
        snaps = {name: with_usage(c, used[name]) for name, c in base.items()}
        try:
            shares = place(snaps, size, query.amount, query.affinity, settings, "find-slot")
        except Conflict as e:
            reason = reason or str(e)
            refused_to = _refused_to(peaks, end)
            continue
        prices = {sh.cloud: base[sh.cloud].price_per_hour_micros[size.flavor] for sh in shares}
        return answer(Slot(instant(start), instant(end), shares, prices), k + 1, complete=True)
    return answer(None, len(starts), complete=True)
