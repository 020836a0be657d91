"""What a run asks of an emulator: its API calls by action, and the emulator's CPU.

The emulator's CPU is the resource canopy and the bound share, so these two are the robust
figures of `bench.real_clouds` on a loaded machine, where wall times are noisy: every call
counted here is one request the emulator must parse, run and answer.

`CallCounter` counts the boto3 calls of this process (canopy's ec2 driver and the bound's
client alike) by operation name, from botocore's one entry point for every API call.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
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


class Probe:
    """Calls to the emulator, its CPU and this process's, between two marks."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.marks: list[tuple[Counter[str], float, float]] = []
        self.at: list[float] = []

    def mark(self) -> None:
        emu = process_cpu(self.pid) if self.pid else 0.0
        self.marks.append((CALLS.snapshot(), emu, cpu_seconds()))
        self.at.append(time.perf_counter())

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
