"""Usage of one cloud over time as a step function, and its peak over sliding windows.

The free-slot search asks "the most in use at any moment of [s, s + L)" for many starts s
in increasing order. Each claim is a step up at its start and a step down at its end, so
usage is a step function; the peak over a window is the largest step value among the
pieces the window touches. Both ends of the window only move forward, so a monotonic
queue per dimension (`SlidingPeak`) answers every window in amortised O(1): the work of a
whole search is linear in the number of claims, whatever the number of starts.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

# vcpus, ram_mb, instances, price per hour (micro-units): a claim's amounts, in that order.
Vec = tuple[int, int, int, int]
DIMS = 4
ZERO: Vec = (0, 0, 0, 0)


@dataclass(frozen=True, slots=True)
class Span:
    """A claim's hold on a cloud over [start, end) (end None: open-ended)."""

    cloud: str
    start: datetime
    end: datetime | None
    amount: Vec


class Steps:
    """One cloud's usage from `origin` on: `values[i]` holds over [times[i], times[i+1]),
    and the last value from its time on. `times[0]` is `origin`."""

    def __init__(self, spans: Iterable[Span], origin: datetime) -> None:
        deltas: dict[datetime, list[int]] = {origin: [0] * DIMS}
        for sp in spans:
            if sp.end is not None and sp.end <= origin:
                continue  # over before the timeline begins
            for at, sign in ((max(sp.start, origin), 1), (sp.end, -1)):
                if at is None:
                    continue
                d = deltas.get(at)
                if d is None:
                    d = deltas[at] = [0] * DIMS
                for i in range(DIMS):
                    d[i] += sign * sp.amount[i]
        self.times = sorted(deltas)
        self.values: list[Vec] = []
        run = [0] * DIMS
        for t in self.times:
            d = deltas[t]
            for i in range(DIMS):
                run[i] += d[i]
            self.values.append((run[0], run[1], run[2], run[3]))

    def at(self, t: datetime) -> Vec:
        """What is in use at the instant `t` (>= origin)."""
        return self.values[bisect_right(self.times, t) - 1]


class SlidingPeak:
    """The most in use over windows [s, e) asked for in order: s and e never decrease."""

    def __init__(self, steps: Steps) -> None:
        self.times = steps.times
        self.values = steps.values
        self.added = -1  # the last piece let into the queues
        self.queues: list[deque[int]] = [deque() for _ in range(DIMS)]
        self.last: tuple[datetime, datetime] | None = None

    def peak(self, s: datetime, e: datetime) -> Vec:
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
        for d in range(DIMS):
            q = queues[d]
            while q[0] < first:
                q.popleft()
            out[d] = values[q[0]][d]
        return (out[0], out[1], out[2], out[3])
