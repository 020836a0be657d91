"""The controller runtime: timeouts, per-cloud concurrency, backoff, error translation."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from canopy.config import load_settings
from canopy.controllers.runtime import Runtime
from canopy.domain.clock import FakeClock
from canopy.domain.errors import CapacityError, TransientError
from canopy.store.db import Database


def runtime(tmp_path: Path, **controllers: float) -> Runtime:
    settings = load_settings(
        None,
        env={},
        overrides={
            "data_dir": str(tmp_path),
            "controllers": controllers,
            "clouds": [{"name": "c1", "driver": "sim", "concurrency": 3}],
        },
    )
    return Runtime(
        db=Database(f"sqlite+aiosqlite:///{tmp_path}/x.db"),
        settings=settings,
        drivers={},
        clock=FakeClock(),
        rng=random.Random(1),
    )


async def test_a_hung_call_times_out_as_a_transient_error(tmp_path: Path) -> None:
    rt = runtime(tmp_path, call_timeout_seconds=0.05)
    never = asyncio.Event()

    async def hang() -> None:
        await never.wait()

    with pytest.raises(TransientError, match=r"no answer within 0\.05s"):
        await rt.call("c1", "create", hang)


async def test_calls_to_one_cloud_respect_its_concurrency(tmp_path: Path) -> None:
    rt = runtime(tmp_path)
    running = peak = 0
    gate = asyncio.Event()

    async def work() -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await gate.wait()
        running -= 1
        return 1

    tasks = [asyncio.create_task(rt.call("c1", "create", work)) for _ in range(10)]
    for _ in range(5):
        await asyncio.sleep(0)
    assert peak == 3
    gate.set()
    assert sum(await asyncio.gather(*tasks)) == 10
    assert peak == 3


async def test_unexpected_driver_exceptions_become_transient(tmp_path: Path) -> None:
    rt = runtime(tmp_path)

    async def broken() -> None:
        raise KeyError("bug")

    with pytest.raises(TransientError, match="KeyError"):
        await rt.call("c1", "create", broken)


async def test_domain_errors_pass_through(tmp_path: Path) -> None:
    rt = runtime(tmp_path)

    async def full() -> None:
        raise CapacityError("no room", cloud="c1")

    with pytest.raises(CapacityError):
        await rt.call("c1", "create", full)


def test_backoff_grows_exponentially_with_jitter_and_a_cap(tmp_path: Path) -> None:
    rt = runtime(tmp_path, backoff_base_seconds=1.0, backoff_max_seconds=30.0)
    for n in range(8):
        delays = [rt.backoff(n) for _ in range(200)]
        ceiling = min(30.0, 2.0**n)
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert max(delays) - min(delays) > ceiling / 10  # jittered, not constant
    assert max(rt.backoff(50) for _ in range(50)) <= 30.0
