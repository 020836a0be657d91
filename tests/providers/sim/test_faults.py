"""Fault injection: rates are honoured, seeds replay, and faults never break idempotency."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from canopy.domain.clock import FakeClock
from canopy.domain.errors import CapacityError, TransientError
from canopy.domain.states import RemoteState
from canopy.providers.sim.driver import SimCompute

from .helpers import MakeSim, spec

BIG = {"hosts": 1, "host_vcpus": 100_000, "host_ram_mb": 10**9, "host_disk_gb": 10**9}


async def _outcomes(sim: SimCompute, calls: int) -> list[str]:
    """The fate of `calls` creates: 'ok', 'transient' or 'capacity'."""
    out = []
    for _ in range(calls):
        try:
            await sim.create(spec())
        except TransientError:
            out.append("transient")
        except CapacityError:
            out.append("capacity")
        else:
            out.append("ok")
    return out


async def test_transient_error_rate_is_roughly_honoured(make_sim: MakeSim) -> None:
    sim = make_sim(transient_error_rate=0.2)
    failures = 0
    for _ in range(1000):
        try:
            await sim.capacity()
        except TransientError as e:
            assert e.cloud == "private"
            failures += 1
    assert 150 <= failures <= 250


async def test_a_transient_error_happens_before_anything_is_written(make_sim: MakeSim) -> None:
    sim = make_sim(transient_error_rate=1.0)
    for _ in range(5):
        with pytest.raises(TransientError, match="injected fault"):
            await sim.create(spec())
    assert await sim.all_servers() == []
    s = await sim.create_out_of_band("c1", "x")
    with pytest.raises(TransientError):
        await sim.delete(s.remote_id)
    assert [x.remote_id for x in await sim.all_servers()] == [s.remote_id]


async def test_capacity_error_rate_is_honoured_and_creates_nothing(make_sim: MakeSim) -> None:
    sim = make_sim(capacity_error_rate=0.3, **BIG)
    outcomes = await _outcomes(sim, 1000)
    refused = outcomes.count("capacity")
    assert 240 <= refused <= 360
    assert len(await sim.all_servers()) == 1000 - refused


async def test_an_injected_capacity_error_does_not_hide_an_existing_server(
    make_sim: MakeSim,
) -> None:
    sim = make_sim()
    s = spec()
    created = await sim.create(s)
    sim.settings.capacity_error_rate = 1.0
    assert (await sim.create(s)).remote_id == created.remote_id
    with pytest.raises(CapacityError, match="injected fault"):
        await sim.create(spec())


async def test_boot_failures_end_in_error_with_a_fault(make_sim: MakeSim, clock: FakeClock) -> None:
    sim = make_sim(boot_failure_rate=1.0, boot_seconds=3.0)
    s = await sim.create(spec())
    assert s.state is RemoteState.PENDING and s.fault is None
    clock.advance(3.0)
    got = await sim.get(s.remote_id)
    assert got is not None
    assert got.state is RemoteState.ERROR
    assert got.fault == "boot failed on host h1"
    assert got.addresses == {}
    assert [x.state for x in await sim.list()] == [RemoteState.ERROR]


async def test_boot_failure_rate_is_roughly_honoured(make_sim: MakeSim, clock: FakeClock) -> None:
    sim = make_sim(boot_failure_rate=0.25, boot_seconds=0.0, **BIG)
    for _ in range(800):
        await sim.create(spec())
    states = [s.state for s in await sim.all_servers()]
    assert 140 <= states.count(RemoteState.ERROR) <= 260
    assert states.count(RemoteState.ERROR) + states.count(RemoteState.RUNNING) == 800


async def test_the_same_seed_replays_the_same_faults(make_sim: MakeSim, tmp_path: Path) -> None:
    rates = {"transient_error_rate": 0.2, "capacity_error_rate": 0.1, **BIG}
    runs = []
    for n, seed in enumerate([1234, 1234, 99]):
        sim = make_sim(seed=seed, path=tmp_path / f"run{n}.db", **rates)
        runs.append(await _outcomes(sim, 300))
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
    assert {"ok", "transient", "capacity"} <= set(runs[0])


async def test_the_same_seed_replays_latencies_and_boot_times(
    make_sim: MakeSim, clock: FakeClock, tmp_path: Path
) -> None:
    timings = []
    for n in range(2):
        sim = make_sim(
            seed=5,
            path=tmp_path / f"t{n}.db",
            api_latency_ms=20.0,
            latency_jitter=0.5,
            boot_seconds=30.0,
            boot_jitter=0.3,
        )
        before = clock.now()
        s = await sim.create(spec())
        assert s.created_at is not None
        timings.append(((s.created_at - before), await _ready_after(sim, s.remote_id, clock)))
    assert timings[0] == timings[1]


async def _ready_after(sim: SimCompute, remote_id: str, clock: FakeClock) -> float:
    """Seconds until the server leaves pending, found by stepping the fake clock."""
    waited = 0.0
    while True:
        got = await sim.all_servers()
        if next(s for s in got if s.remote_id == remote_id).state is not RemoteState.PENDING:
            return round(waited, 1)
        clock.advance(0.1)
        waited += 0.1


async def test_latency_jitter_spreads_around_the_mean_and_is_never_negative(
    make_sim: MakeSim, clock: FakeClock
) -> None:
    sim = make_sim(api_latency_ms=20.0, latency_jitter=0.5)
    waits = []
    for _ in range(1000):
        before = clock.now()
        await sim.offerings()
        waits.append((clock.now() - before).total_seconds())
    assert min(waits) >= 0.0
    assert statistics.mean(waits) == pytest.approx(0.020, rel=0.1)
    assert statistics.stdev(waits) > 0.005


async def test_boot_jitter_varies_boot_times_around_the_mean(
    make_sim: MakeSim, clock: FakeClock
) -> None:
    sim = make_sim(boot_seconds=10.0, boot_jitter=0.3, **BIG)
    for _ in range(200):
        await sim.create(spec())
    start = clock.now()
    booted_at: list[float] = []
    while len(booted_at) < 200:
        clock.advance(0.5)
        running = sum(s.state is RemoteState.RUNNING for s in await sim.all_servers())
        booted_at += [(clock.now() - start).total_seconds()] * (running - len(booted_at))
    assert 8.0 < statistics.mean(booted_at) < 12.0
    assert max(booted_at) - min(booted_at) > 3.0
