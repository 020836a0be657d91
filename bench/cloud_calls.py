"""What a run asks of an emulator: its API calls by action, and the emulator's CPU.

The emulator's CPU is the resource canopy and the bound share, so these two are the robust
figures of `bench.real_clouds` on a loaded machine, where wall times are noisy: every call
counted here is one request the emulator must parse, run and answer.

`CallCounter` counts the boto3 calls of this process (canopy's ec2 driver and the bound's
client alike) by operation name, from botocore's one entry point for every API call.
The Nova harness counts on its side instead (tests/interop/nova/nova_server.py: every
request it answers, by method and path template, with the seconds its handler took):
`Probe(pid, served=...)` reads that before and after, so both sides of a Nova run are
counted alike, whatever client made the call.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from bench.common import cpu_seconds


class CallCounter:
    """Counts boto3 API calls by operation name while `installed()`."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        # (operation, start, end) of every call, time.perf_counter(): when each was made.
        self.trace: list[tuple[str, float, float]] = []
        self._lock = threading.Lock()

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self.counts)

    @contextmanager
    def installed(self) -> Iterator[CallCounter]:
        from botocore.client import BaseClient

        original = BaseClient._make_api_call  # type: ignore[attr-defined]
        counter = self

        def counted(client: Any, operation_name: str, api_params: Any) -> Any:
            with counter._lock:
                counter.counts[operation_name] += 1
            t0 = time.perf_counter()
            try:
                return original(client, operation_name, api_params)
            finally:
                with counter._lock:
                    counter.trace.append((operation_name, t0, time.perf_counter()))

        BaseClient._make_api_call = counted  # type: ignore[attr-defined]
        try:
            yield self
        finally:
            BaseClient._make_api_call = original  # type: ignore[attr-defined]


CALLS = CallCounter()  # every boto3 call of this process, while installed


Served = dict[str, tuple[int, float]]  # "GET /path?keys" -> (count, handler seconds)


class Probe:
    """Calls to the emulator, its CPU and this process's, between two marks; with
    `served`, also the emulator's own count of the requests it answered."""

    def __init__(self, pid: int | None, served: Callable[[], Served] | None = None) -> None:
        self.pid = pid
        self.served = served
        self.marks: list[tuple[Counter[str], float, float]] = []
        self.served_marks: list[Served] = []
        self.at: list[float] = []

    def mark(self) -> None:
        emu = process_cpu(self.pid) if self.pid else 0.0
        self.marks.append((CALLS.snapshot(), emu, cpu_seconds()))
        if self.served is not None:
            self.served_marks.append(self.served())
        self.at.append(time.perf_counter())

    def served_between(self) -> Served:
        """What the emulator answered between the first mark and the last, by template."""
        if len(self.served_marks) < 2:
            return {}
        a, b = self.served_marks[0], self.served_marks[-1]
        out: Served = {}
        for k, (n, s) in b.items():
            n0, s0 = a.get(k, (0, 0.0))
            if n > n0:
                out[k] = (n - n0, s - s0)
        return out

    def served_table(self) -> str:
        """The served calls, most first: count, handler seconds in all, ms each."""
        rows = sorted(self.served_between().items(), key=lambda kv: -kv[1][0])
        total_n = sum(n for _, (n, _) in rows)
        total_s = sum(s for _, (_, s) in rows)
        lines = [f"{n:>6} {s:8.2f}s {1000 * s / n:8.1f}ms  {k}" for k, (n, s) in rows]
        lines.append(f"{total_n:>6} {total_s:8.2f}s  (all)")
        return "\n      ".join(lines)

    def timeline(self, since: float) -> str:
        """When each kind of call ran, relative to the first mark (first start, last end)."""
        t0, t1 = self.at[0], self.at[-1]
        spans: dict[str, list[float]] = {}
        for op, a, b in CALLS.trace:
            if b >= since and a <= t1:
                s = spans.setdefault(op, [a, b, 0])
                s[0], s[1], s[2] = min(s[0], a), max(s[1], b), s[2] + 1
        each = [
            f"{op} {a - t0:+.2f}..{b - t0:+.2f}"
            for op, a, b in sorted(CALLS.trace, key=lambda x: x[1])
            if b >= since and a <= t1 and op != "RunInstances"
        ]
        return (
            "; ".join(
                f"{op} x{int(n)} {a - t0:+.2f}..{b - t0:+.2f}s" for op, (a, b, n) in spans.items()
            )
            + f"; end {t1 - t0:.2f}s\n      "
            + "\n      ".join(each)
        )

    def describe(self) -> str:
        (c0, e0, o0), (c1, e1, o1) = self.marks[0], self.marks[-1]
        return f"emulator CPU {e1 - e0:.2f}s, ours {o1 - o0:.2f}s; {describe_calls(c1 - c0)}"


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    import psutil  # type: ignore[import-untyped]

    t = psutil.Process(pid).cpu_times()
    return float(t.user + t.system)


def describe_calls(calls: Counter[str]) -> str:
    """`RunInstances 200, DescribeInstances 3` (most first) and the total."""
    parts = [f"{k} {v}" for k, v in calls.most_common() if v]
    return f"{sum(calls.values())} calls: " + ", ".join(parts)
