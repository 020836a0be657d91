"""The controller runtime: timeouts, per-cloud concurrency, backoff, error translation, and
calls fenced by a lease."""

from __future__ import annotations

import asyncio
import random
import time
from datetime import timedelta
from pathlib import Path

import pytest

from canopy.config import load_settings
from canopy.controllers.fencing import Hold, LeaseLost
from canopy.controllers.runtime import Runtime
from canopy.domain.clock import FakeClock
from canopy.domain.errors import CapacityError, TransientError
from canopy.store.db import Database
from canopy.store.leases import lease_job, lease_servers
from canopy.store.models import Job, Server

from .harness import Plane, make_plane, statements


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


# Calls under a lease (controllers/fencing.py) ----------------------------------------


async def _held_server(p: Plane) -> Hold:
    """A server leased by `p`'s worker, and the hold its step would run under."""
    await p.create(1)
    sent = asyncio.get_running_loop().time()
    async with p.db.session() as s:
        [row] = await lease_servers(
            s,
            where=[],
            worker=p.rt.worker_id,
            now=p.clock.now(),
            lease_seconds=p.rt.lease_seconds,
            limit=1,
        )
    return p.rt.leases(Server).hold(row.id, renewed=sent, at=p.clock.now())


async def test_a_call_ends_when_its_lease_would_run_out_unrenewed(
    db_url: str, tmp_path: Path
) -> None:
    short = {"controllers": {"lease_seconds": 0.6, "call_timeout_seconds": 60.0}}
    p = await make_plane(db_url, tmp_path, overrides=short)
    try:
        hold = await _held_server(p)
        never = asyncio.Event()
        started = time.monotonic()
        # No heartbeat: the call is cut at the lease as this worker knows it, long before
        # its own timeout, and raises LeaseLost (not a transient error to retry).
        with pytest.raises(LeaseLost):
            await asyncio.wait_for(p.rt.call("private", "create", never.wait, hold=hold), 30)
        assert time.monotonic() - started < 30
        assert hold.lost
    finally:
        await p.close()


async def test_each_renewal_moves_the_end_of_a_call_under_the_lease(
    db_url: str, tmp_path: Path
) -> None:
    lease = {"controllers": {"lease_seconds": 3.0, "call_timeout_seconds": 60.0}}
    p = await make_plane(db_url, tmp_path, overrides=lease)
    try:
        hold = await _held_server(p)
        never = asyncio.Event()
        task = asyncio.create_task(p.rt.call("private", "create", never.wait, hold=hold))
        for _ in range(1000):  # until the fence is through and the call has begun
            if hold.calls:
                break
            await asyncio.sleep(0.01)
        [(timeout, own)] = hold.calls.items()
        first = timeout.when()
        assert first is not None and first == pytest.approx(hold.expires) and first < own
        await asyncio.sleep(0.05)
        assert await p.rt.heartbeat() == 0  # renewed: the call may run on
        later = timeout.when()
        assert later is not None and first + 0.04 < later < own
        assert not task.done()
        hold.lose()  # e.g. a renewal found the row taken: the call ends now
        with pytest.raises(LeaseLost):
            await asyncio.wait_for(task, 10)
    finally:
        await p.close()


async def test_a_fence_on_a_lost_lease_makes_no_call(db_url: str, tmp_path: Path) -> None:
    """Any leased table: here a periodic job's row, as sync's calls are fenced on it."""
    p = await make_plane(db_url, tmp_path)
    try:
        sent = asyncio.get_running_loop().time()
        async with p.db.session() as s:
            assert await lease_job(
                s, name="sync:private", worker=p.rt.worker_id, now=p.clock.now(), lease_seconds=30
            )
        hold = p.rt.leases(Job).hold("sync:private", renewed=sent, at=p.clock.now())
        p.clock.advance(31)  # this worker stalled; another takes the job
        async with p.db.session() as s:
            other = await lease_job(
                s, name="sync:private", worker="other", now=p.clock.now(), lease_seconds=30
            )
            assert other is not None
        called: list[str] = []

        async def listing() -> None:
            called.append("list")

        with pytest.raises(LeaseLost):
            await p.rt.call("private", "list", listing, hold=hold)
        assert called == [] and hold.lost
        async with p.db.read() as s:
            job = await s.get(Job, "sync:private")
            assert job is not None and job.claimed_by == "other"
            assert job.claim_expires_at == p.clock.now() + timedelta(seconds=30)
        # A hold still valid is renewed by its fence and the call is made.
        async with p.db.session() as s:
            assert await lease_job(
                s, name="sync:public", worker=p.rt.worker_id, now=p.clock.now(), lease_seconds=5
            )
        mine = p.rt.leases(Job).hold("sync:public", renewed=sent, at=p.clock.now())
        p.clock.advance(4)  # the 5 s lease still runs, but 4 s is no longer fresh: renew
        await p.rt.call("private", "list", listing, hold=mine)
        assert called == ["list"]
        async with p.db.read() as s:
            job = await s.get(Job, "sync:public")
            assert job is not None
            assert job.claim_expires_at == p.clock.now() + timedelta(seconds=30)
    finally:
        await p.close()


async def test_a_call_on_a_fresh_renewal_is_not_fenced_again_an_older_one_is(
    db_url: str, tmp_path: Path
) -> None:
    """A renewal sent at most a tenth of a lease ago proves the lease as well as a new one
    (nobody may take the row within a lease of it): the call right after a lease makes no
    extra statement; a call after a longer wait is fenced first."""
    p = await make_plane(db_url, tmp_path)
    lease = p.rt.lease_seconds
    try:
        hold = await _held_server(p)

        async def nothing() -> None:
            pass

        async def call() -> list[str]:
            with statements(p.db) as seen:
                await p.rt.call("private", "find", nothing, hold=hold)
            return [s for s in seen if s.startswith("UPDATE servers SET claim_expires_at")]

        assert await call() == []  # just leased: fresh
        p.clock.advance(lease / 20)
        assert await call() == []  # still fresh by both clocks
        p.clock.advance(lease / 10)  # older than a tenth of a lease by the lease clock
        assert len(await call()) == 1
        assert await call() == []  # that fence is a fresh renewal again
    finally:
        await p.close()
