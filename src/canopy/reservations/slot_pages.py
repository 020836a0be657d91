"""The free-slot sweep over a range read a page at a time, in time order, with a bound on
what is read.

Each page is a stretch of candidate starts [lo, hi]; what it reads is each cloud's usage
as steps over [lo, hi + L) (L the duration), computed by the database
(store/claim_steps.py): every claim under those windows is in them, so the sweep is exact
for the page's starts, and the first page with an accepted start holds the earliest one.
The candidates of a page are its first minute and the minute after each claim end in it
(slots.py says why these suffice); a page's first minute is one more candidate, which
costs a check and changes no answer. Pages start at a day (or four durations) and double,
so a slot near the start of the range reads little and a year reads about ten pages; a
page is narrower when the rows left would not cover twice as wide at the density of the
last one, because the database sums every claim under a page whatever the LIMIT, so the
pages' work follows the rows read.

The bound: at most MAX_STEP_ROWS step rows are read per search, over all pages (besides
MAX_CANDIDATES starts and MAX_DECISIONS servers placed, as before). A range with no slot
whose usage changes more often than that is answered up to where it was read: no slot,
`complete` false, and as `searched_until` the last start up to which every start is
refused (the sweep's `refused_through`: past the candidates examined, the starts whose
windows still hold a refusal's peaks), later than the `after` asked, so the caller can
ask again from there and goes on; when nothing past `after` could be decided, a 400.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from canopy.config import Settings
from canopy.domain.errors import InvalidRequest
from canopy.domain.placement import CloudSnapshot
from canopy.reservations.capacity import Size
from canopy.reservations.slots import (
    MAX_CANDIDATES,
    MAX_DECISIONS,
    Slot,
    SlotAnswer,
    SlotQuery,
    ceil_minute,
    floor_minute,
    sweep,
)
from canopy.reservations.timeline import MINUTE_US, SlidingPeak, Steps, Vec, instant, micros
from canopy.store.claim_steps import StepRow, usage_steps

MAX_STEP_ROWS = 5_000  # (cloud, instant) usage steps read per search, over all pages
FIRST_PAGE = timedelta(days=1)  # the first page's starts (at least four durations)


def page_of(
    base: dict[str, CloudSnapshot], rows: list[StepRow], lo: int, hi: int
) -> tuple[dict[str, SlidingPeak], list[int]]:
    """Each cloud's sliding peak over the page's steps, and the page's candidate starts."""
    times: dict[str, list[int]] = {name: [] for name in base}
    values: dict[str, list[Vec]] = {name: [] for name in base}
    starts = {lo}
    for cloud, at, used, ends in rows:
        if cloud not in times:
            continue
        t = micros(at)
        times[cloud].append(t)
        values[cloud].append(used)
        if ends and lo < t <= hi:
            starts.add(ceil_minute(t))
    peaks = {name: SlidingPeak(Steps.known(lo, times[name], values[name])) for name in base}
    return peaks, sorted(starts)


async def paged_search(
    s: AsyncSession,
    base: dict[str, CloudSnapshot],
    query: SlotQuery,
    size: Size,
    settings: Settings,
    now: datetime,
    max_rows: int = MAX_STEP_ROWS,
) -> SlotAnswer:
    """The earliest accepted start in the query's range, read a page at a time."""
    earliest = ceil_minute(micros(max(query.after, now)))
    latest = floor_minute(micros(query.before - query.duration))
    length = query.duration // timedelta(microseconds=1)
    clouds = sorted(base)
    cost = query.amount * (len(base) if query.affinity else 1)
    rows_left, decisions_left, candidates_left = max_rows, MAX_DECISIONS, MAX_CANDIDATES
    candidates = examined = 0
    through = -1  # every start from `earliest` up to this one is refused (-1: none known)
    reason = ""

    def answer(slot: Slot | None, complete: bool, placed_out: bool = False) -> SlotAnswer:
        if slot is None and not complete and through <= micros(query.after):
            # Asked again from there, it would answer the same: say what to change.
            raise InvalidRequest(_stuck(not placed_out, max_rows, cost))
        refused = instant(through) if through >= earliest else None
        return SlotAnswer(
            slot=slot,
            earliest=instant(earliest),
            latest=instant(latest),
            candidates=candidates,
            examined=examined,
            complete=complete,
            searched_until=slot.start if slot is not None else refused,
            reason=reason,
            decisions=MAX_DECISIONS - decisions_left,
            refused_through=refused,
        )

    lo = earliest
    width = max(4 * length, FIRST_PAGE // timedelta(microseconds=1))
    while lo <= latest:
        hi = min(latest, floor_minute(lo + width))
        rows = await usage_steps(s, clouds, instant(lo), instant(hi + length), rows_left + 1)
        cut = len(rows) > rows_left
        if cut:
            # The bound: keep the instants read whole, and the starts they decide.
            first_unread = rows[rows_left][1]
            rows = [r for r in rows[:rows_left] if r[1] < first_unread]
            hi = min(hi, floor_minute(micros(first_unread) - length))
            if hi < lo:
                if examined:
                    return answer(None, complete=False)
                raise InvalidRequest(_stuck(True, max_rows, cost))
        rows_left -= len(rows)
        if examined and decisions_left < cost:
            return answer(None, complete=False, placed_out=True)
        peaks, starts = page_of(base, rows, lo, hi)
        # CPU work bounded by the candidates and decisions left: off the loop.
        part = await asyncio.to_thread(
            sweep,
            base,
            peaks,
            starts,
            lo,
            hi,
            query,
            size,
            settings,
            decisions_left,
            reason,
            candidates_left,
            latest,
        )
        candidates += part.candidates
        examined += part.examined
        decisions_left -= part.decisions
        candidates_left -= part.examined
        reason = part.reason
        if part.refused_through is not None:
            through = max(through, micros(part.refused_through))
        if part.slot is not None or not part.complete:
            return answer(part.slot, complete=part.complete, placed_out=not part.complete)
        if cut or rows_left <= 0:
            return answer(None, complete=max(hi, through) >= latest)
        # Twice as many starts, or fewer: as many as the rows left should cover at this
        # page's density (the database sums every claim under a page, whatever the LIMIT).
        fits = (hi + length - lo) * rows_left // max(len(rows), 1) - length
        width = max(MINUTE_US, min(2 * (hi + MINUTE_US - lo), fits))
        lo = hi + MINUTE_US
    return answer(None, complete=True)


def _stuck(rows: bool, max_rows: int, cost: int) -> str:
    """Why a search can say nothing past the start asked (the rows it may read, or the
    placements it may run, are spent on that start): what to ask instead."""
    if rows:
        return (
            f"Usage changes more than {max_rows} times under one window of that length: "
            "search a shorter duration."
        )
    return (
        f"Placing {cost} servers at each start passes the search's bound of "
        f"{MAX_DECISIONS}: search for fewer servers."
    )
