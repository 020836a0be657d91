"""Usage of one cloud over time as a step function, and its peak over sliding windows.

The free-slot search asks "the most in use at any moment of [s, s + L)" for many starts s
in increasing order. Each claim is a step up at its start and a step down at its end, so
usage is a step function; the peak over a window is the largest step value among the
pieces the window touches. Both ends of the window only move forward, so a monotonic
queue per dimension (`SlidingPeak`) answers every window in amortised O(1): the work of a
whole search is linear in the number of claims, whatever the number of starts.

Instants are integer microseconds since the epoch (`micros`): exact, and several times
cheaper to sort, hash and compare than datetimes, which matters at 10,000 claims.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Final

# vcpus, ram_mb, instances, price per hour (micro-units): a claim's amounts, in that order.
Vec = tuple[int, int, int, int]
DIMS = 4
ZERO: Vec = (0, 0, 0, 0)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
MINUTE_US = 60_000_000


def micros(t: datetime) -> int:
    """An aware instant as integer microseconds since the epoch (exact)."""
    return (t - EPOCH) // _US


def instant(us: int) -> datetime:
    """The aware UTC datetime of `micros`' integer."""
    return EPOCH + timedelta(microseconds=us)


# A claim's hold on a cloud over [start, end) (end None: open-ended), in `micros`:
# (cloud, start, end, amount). A plain tuple of atoms (a str, ints, None, a tuple of ints),
# not an object: the garbage collector stops tracking such a tuple at its first pass, so a
# search's thousands of spans are never promoted to the old generation. As objects they
# were, and brought on a full collection every few searches (tens of ms with a server's
# heap): the slow tail of the search's latency.
Span = tuple[str, int, int | None, Vec]
CLOUD: Final = 0  # the fields' indexes
START: Final = 1
END: Final = 2
AMOUNT: Final = 3


def span(cloud: str, start: int, end: int | None, amount: Vec) -> Span:
    return (cloud, start, end, amount)


class Steps:
    """One cloud's usage from `origin` on: `values[i]` holds over [times[i], times[i+1]),
    and the last value from its time on. `times[0]` is `origin`."""

    def __init__(self, spans: Iterable[Span], origin: int) -> None:
        # One event per claim start (clipped to the origin) and end, sorted by time only
        # (cheaper than comparing tuples), then running sums merged per instant.
        ev: list[tuple[int, int, int, int, int]] = [(origin, 0, 0, 0, 0)]
        for _, start, e, a in spans:
            if e is not None and e <= origin:
                continue  # over before the timeline begins
            ev.append((start if start > origin else origin, a[0], a[1], a[2], a[3]))
            if e is not None:
                ev.append((e, -a[0], -a[1], -a[2], -a[3]))
        ev.sort(key=itemgetter(0))
        self.times: list[int] = []
        self.values: list[Vec] = []
        v0 = v1 = v2 = v3 = 0
        last: int | None = None
        for at, a0, a1, a2, a3 in ev:
            v0 += a0
            v1 += a1
            v2 += a2
            v3 += a3
            if at == last:
                self.values[-1] = (v0, v1, v2, v3)
            else:
                self.times.append(at)
                self.values.append((v0, v1, v2, v3))
                last = at

    @classmethod
    def known(cls, origin: int, times: list[int], values: list[Vec]) -> Steps:
        """Steps computed already (by the store, store/claim_steps.py): `times` increasing,
        none before `origin`; nothing is in use before the first."""
        self = cls.__new__(cls)
        if not times or times[0] > origin:
            times, values = [origin, *times], [ZERO, *values]
        self.times, self.values = times, values
        return self

    def at(self, t: int) -> Vec:
        """What is in use at the instant `t` (>= origin)."""
        return self.values[bisect_right(self.times, t) - 1]


class SlidingPeak:
    """The most in use over windows [s, e) asked for in order: s and e never decrease."""

    def __init__(self, steps: Steps) -> None:
        self.times = steps.times
        self.values = steps.values
        self.added = -1  # the last piece let into the queues
        self.queues: list[deque[int]] = [deque() for _ in range(DIMS)]
        self.last: tuple[int, int] | None = None
        # After `peak`: an instant of the window by which every nonzero dimension has
        # reached its peak value (None: nothing in use in the window). A later window
        # that still contains [s, held] holds at least the same peak.
        self.held: int | None = None

    def peak(self, s: int, e: int) -> Vec:
        """Each dimension's largest value over the pieces that [s, e) touches."""
        if self.last is not None and (s < self.last[0] or e < self.last[1]):
            raise ValueError("windows must be asked for in order")
        if s < self.times[0] or e <= s:
            raise ValueError(f"not a window of the timeline: {s} -> {e}")
        self.last = (s, e)
        times, values, queues = self.times, self.values, self.queues
        while self.added + 1 < len(times) and times[self.added + 1] < e:
            self.added += 1
            v = values[self.added]
            for d in range(DIMS):
                q = queues[d]
                while q and values[q[-1]][d] <= v[d]:
                    q.pop()
                q.append(self.added)
        first = bisect_right(times, s) - 1  # the piece holding s
        out = [0] * DIMS
        held: int | None = None
        for d in range(DIMS):
            q = queues[d]
            while q[0] < first:
                q.popleft()
            out[d] = values[q[0]][d]
            if out[d] > 0:
                # The peak holds over the whole piece q[0] (the latest of equal maxima):
                # its last instant inside the window.
                nxt = q[0] + 1
                at = (min(times[nxt], e) if nxt < len(times) else e) - 1
                held = at if held is None else min(held, at)
        self.held = held
        return (out[0], out[1], out[2], out[3])
