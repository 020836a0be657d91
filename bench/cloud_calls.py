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

        original = BaseClient._make_api_call
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

        BaseClient._make_api_call = counted  # type: ignore[method-assign]
        try:
            yield self
        finally:
            BaseClient._make_api_call = original  # type: ignore[method-assign]


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    import psutil

    t = psutil.Process(pid).cpu_times()
    return float(t.user + t.system)


def describe_calls(calls: Counter[str]) -> str:
    """`RunInstances 200, DescribeInstances 3` (most first) and the total."""
    parts = [f"{k} {v}" for k, v in calls.most_common() if v]
    return f"{sum(calls.values())} calls: " + ", ".join(parts)
