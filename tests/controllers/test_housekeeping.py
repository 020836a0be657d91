"""Housekeeping purges expired tokens and stale login failures, in bounded batches, once per
interval across every worker (the job is leased like a cloud's sync)."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select, update

from canopy.controllers.housekeeping import JOB, HousekeepingController
from canopy.domain.clock import FakeClock
from canopy.services import identity, throttle, tokens
from canopy.services.passwords import UNUSABLE
from canopy.services.throttle import LoginKeys, ThrottlePolicy
from canopy.store.models import Cloud, Job, LoginFailure, Token, User

from .harness import Plane, make_plane

INTERVAL = 300.0


async def _plane(db_url: str, tmp_path: Path) -> Plane:
    return await make_plane(
        db_url, tmp_path, overrides={"identity": {"purge_interval_seconds": INTERVAL}}
    )


async def _issue(p: Plane, n: int, ttl: float) -> None:
    """`n` tokens for one user that expire `ttl` seconds from now."""
    now = p.clock.now()
    async with p.db.session() as s:
        user = (await s.execute(select(User).where(User.name == "hk-user"))).scalar_one_or_none()
        if user is None:
            user = await identity.create_user(s, "hk-user", UNUSABLE, now)
        for _ in range(n):
            await tokens.issue_token(s, user, None, now, ttl)


async def _count(p: Plane, model: type[Token] | type[LoginFailure]) -> int:
    async with p.db.read() as s:
        return int((await s.execute(select(func.count()).select_from(model))).scalar_one())


async def test_expired_tokens_go_live_ones_stay(db_url: str, tmp_path: Path) -> None:
    p = await _plane(db_url, tmp_path)
    try:
        await _issue(p, 3, ttl=60)
        await _issue(p, 2, ttl=3600)
        hk = HousekeepingController(p.rt)
        assert await hk.run_once() == 0  # nothing has expired yet
        p.clock.advance(120)
        assert await hk.run_once() == 0  # not due again before the interval
        p.clock.advance(INTERVAL)
        assert await hk.run_once() == 3
        assert await _count(p, Token) == 2
    finally:
        await p.close()


async def test_a_backlog_drains_in_batches_pass_after_pass(db_url: str, tmp_path: Path) -> None:
    p = await _plane(db_url, tmp_path)
    try:
        await _issue(p, 5, ttl=1)
        p.clock.advance(2)
        hk = HousekeepingController(p.rt, batch=2)
        # Full batches: the next pass follows at once, without waiting for the interval.
        assert [await hk.run_once() for _ in range(4)] == [2, 2, 1, 0]
        assert await _count(p, Token) == 0
    finally:
        await p.close()


async def test_one_worker_per_interval_runs_it(db_url: str, tmp_path: Path) -> None:
    p = await _plane(db_url, tmp_path)
    try:
        first = HousekeepingController(p.rt)
        second = HousekeepingController(dataclasses.replace(p.rt, worker_id="other-worker"))
        await _issue(p, 2, ttl=1)
        p.clock.advance(2)
        assert await first.run_once() == 2
        await _issue(p, 2, ttl=1)
        p.clock.advance(2)
        # The job ran moments ago: the other worker leaves it until the interval is over.
        assert await second.run_once() == 0
        assert await _count(p, Token) == 2
        p.clock.advance(INTERVAL)
        assert await second.run_once() == 2
    finally:
        await p.close()


async def test_stale_login_failures_go_locks_in_force_stay(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(
        db_url,
        tmp_path,
        overrides={
            "identity": {
                "lockout_failure_attempts": 3,
                "lockout_seconds": 3600,
                "lockout_max_seconds": 3600,
                "lockout_window_seconds": 600,
            }
        },
    )
    try:
        policy = ThrottlePolicy.from_settings(p.settings.identity)
        locked = LoginKeys.of("guessed-user", None)
        typo = LoginKeys.of("typo-user", None)
        async with p.db.session() as s:
            for _ in range(3):
                await throttle.record_failure(s, policy, locked, p.clock.now())
            await throttle.record_failure(s, policy, typo, p.clock.now())
        p.clock.advance(601)  # past the window, not past the hour's lockout
        assert await HousekeepingController(p.rt).run_once() == 1
        async with p.db.read() as s:
            left = set((await s.execute(select(LoginFailure.key))).scalars())
        assert left == {locked.pair}  # lockout_failure_attempts locks (user, address)
    finally:
        await p.close()


async def test_the_worker_runs_it(db_url: str, tmp_path: Path) -> None:
    p = await _plane(db_url, tmp_path)
    stop = asyncio.Event()
    try:
        await _issue(p, 2, ttl=1)
        p.clock.advance(2)
        task = asyncio.create_task(p.worker.run(stop))
        try:
            for _ in range(1000):  # up to 10 s of real time for the loop's first pass
                if await _count(p, Token) == 0:
                    break
                await asyncio.sleep(0.01)
            assert await _count(p, Token) == 0
        finally:
            stop.set()
            await task
    finally:
        await p.close()


async def test_the_job_lease_is_read_on_the_lease_clock(db_url: str, tmp_path: Path) -> None:
    # Workers on several machines agree on lease expiry only through one clock (the
    # database's on PostgreSQL). This worker's own clock runs an hour ahead of the lease
    # clock: another worker's lease, live on the lease clock, must still hold it off.
    p = await _plane(db_url, tmp_path)
    try:
        lease_clock = FakeClock(p.clock.now())
        rt = dataclasses.replace(p.rt, lease_clock=lease_clock)
        await _issue(p, 2, ttl=1)
        async with p.db.session() as s:
            s.add(
                Job(
                    name=JOB,
                    runs=0,
                    claimed_by="other-worker",
                    claim_expires_at=lease_clock.now() + timedelta(seconds=10),
                )
            )
        p.clock.advance(3600)
        assert await HousekeepingController(rt).run_once() == 0
        async with p.db.read() as s:
            job = await s.get(Job, JOB)
            assert job is not None and job.claimed_by == "other-worker"
        lease_clock.advance(11)  # now it has run out on the clock that counts
        assert await HousekeepingController(rt).run_once() == 2
    finally:
        await p.close()


async def test_a_pass_repairs_cloud_counters_that_drifted_from_their_claims(
    db_url: str, tmp_path: Path
) -> None:
    p = await _plane(db_url, tmp_path)
    try:
        await p.create(2, flavor="m1.tiny")
        await p.worker.placement.run_once()
        async with p.db.read() as s:
            right = {c.name: c.vcpus_claimed for c in (await s.execute(select(Cloud))).scalars()}
        assert sum(right.values()) == 2
        async with p.db.session() as s:  # a drift, as a bug or a hand edit could leave
            await s.execute(update(Cloud).values(vcpus_claimed=Cloud.vcpus_claimed + 7))
        await HousekeepingController(p.rt).run_once()
        async with p.db.read() as s:
            now = {c.name: c.vcpus_claimed for c in (await s.execute(select(Cloud))).scalars()}
            repaired = sum((await s.execute(select(Cloud.counters_repaired))).scalars())
        assert now == right and repaired == len(right)
    finally:
        await p.close()
