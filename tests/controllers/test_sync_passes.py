"""Each cloud's sync pass runs on its own: a slow pass over one cloud (a full listing, a
slow API) does not hold back another cloud's pass, and the loop does not spin on a cloud
whose pass is still running."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path

from canopy.controllers.sync_passes import SyncPasses
from canopy.providers.base import ListPage
from canopy.store.models import Job

from .harness import make_plane

CLOUDS = """
[[clouds]]
name = "slow"
tier = 0
[clouds.sim]
api_latency_ms = 0

[[clouds]]
name = "quick"
tier = 1
[clouds.sim]
api_latency_ms = 0
"""


async def _until(check: object, seconds: float = 10.0) -> None:
    """Wait in real time for tasks in flight (the passes run as tasks)."""
    for _ in range(int(seconds / 0.01)):
        if check():  # type: ignore[operator]
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not true after {seconds}s")


async def test_a_slow_pass_over_one_cloud_does_not_hold_back_another(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        gate = asyncio.Event()
        sim = p.sim("slow")
        listing = sim.list_page

        async def slow_list(changes_since: datetime | None, marker: str | None, n: int) -> ListPage:
            await gate.wait()
            return await listing(changes_since, marker, n)

        sim.list_page = slow_list  # type: ignore[method-assign]
        passes = SyncPasses(p.worker.sync)
        assert await passes.start() == 2  # never synced: both due
        await _until(lambda: passes.running == {"slow"})  # quick's pass is done meanwhile
        assert p.worker.sync._last_pass.keys() == {"quick"}
        # The loop's wait counts only the clouds it can start: quick's next pass (1 s on),
        # not slow's, which is overdue but running.
        assert passes.next_due_in(30.0) > 0.5
        assert await passes.start() == 0  # nothing to start: no second pass over slow
        gate.set()
        await passes.drain()
        assert passes.running == set()
        assert p.worker.sync._last_pass.keys() == {"quick", "slow"}
    finally:
        await p.close()


async def test_a_failing_pass_is_logged_and_not_tried_again_before_the_interval(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        calls = 0

        async def broken(cloud: str, *, force: bool = False) -> bool:
            nonlocal calls
            calls += 1
            raise RuntimeError("database away")

        p.worker.sync.sync_cloud = broken  # type: ignore[method-assign]
        passes = SyncPasses(p.worker.sync)
        assert await passes.start() == 2
        await passes.drain()
        assert calls == 2
        assert await passes.start() == 0  # not before the interval at rest
        assert passes.next_due_in(30.0) > 0.5
        p.clock.advance(p.settings.controllers.sync_seconds)
        assert await passes.start() == 2
        await passes.drain()
    finally:
        await p.close()


async def test_a_cloud_another_worker_holds_is_not_tried_again_at_once_even_in_a_hurry(
    db_url: str, tmp_path: Path
) -> None:
    """A create asks for a pass over a cloud (`sync_soon`) that another worker's pass
    holds: the lease is refused, and the loop must not start the pass again and again (a
    write transaction each) while that lease lives, but wait until it could have ended."""
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        rt = p.worker.sync.rt
        now = rt.clock.now()
        lease_until = rt.lease_now() + timedelta(seconds=60)
        async with p.db.session() as s:
            s.add(Job(name="sync:quick", runs=1, claimed_by="another-worker",
                      claim_expires_at=lease_until, next_run_at=None))  # fmt: skip
        passes = SyncPasses(p.worker.sync)
        p.worker.sync.not_before("slow", now + timedelta(hours=1))  # only quick matters
        rt.sync_soon.ask("quick", now)  # a create recorded on quick asks for a pass now
        signal = rt.signal("sync")
        started = 0
        for _ in range(5):  # what the worker's loop does, at one instant of the clock
            signal.clear()
            n = await passes.start()
            started += n
            await passes.drain()
            if n == 0 and not signal.is_set() and passes.next_due_in(30.0) > 0.5:
                break  # the loop would wait: fine
            await asyncio.sleep(0)
        async with p.db.read() as s:
            job = await s.get(Job, "sync:quick")
        assert job is not None and job.claimed_by == "another-worker"  # never taken
        assert started <= 1, f"{started} lease attempts on a cloud another worker holds"
        # Once the other worker's lease could have ended, the ask is served after all.
        c = p.settings.controllers
        p.clock.advance(min(c.sync_seconds, c.lease_seconds))
        assert passes.next_due_in(30.0) < 0.01
        assert passes.sync.may_be_due("quick", rt.clock.now())
    finally:
        await p.close()


async def test_a_failing_pass_a_create_asked_for_is_not_tried_again_at_once(
    db_url: str, tmp_path: Path
) -> None:
    """An ask from a create skips the interval at rest, but not the pause after a failure:
    the ask stays (the pass never started), and a failing database is not hammered."""
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        calls = 0

        async def broken(cloud: str, *, force: bool = False) -> bool:
            nonlocal calls
            calls += 1
            raise RuntimeError("database away")

        p.worker.sync.sync_cloud = broken  # type: ignore[method-assign]
        rt = p.worker.sync.rt
        passes = SyncPasses(p.worker.sync)
        p.worker.sync.not_before("slow", rt.clock.now() + timedelta(hours=1))
        rt.sync_soon.ask("quick", rt.clock.now())
        assert await passes.start() == 1
        await passes.drain()
        assert await passes.start() == 0  # asked for, but it has just failed
        assert passes.next_due_in(30.0) > 0.5
        p.clock.advance(p.settings.controllers.sync_seconds)
        assert await passes.start() == 1
        await passes.drain()
        assert calls == 2
    finally:
        await p.close()


async def test_an_ask_for_a_cloud_with_no_driver_does_not_make_the_loop_spin(
    db_url: str, tmp_path: Path
) -> None:
    """A cloud removed while a pass over it was asked for (a boot's look, a look again):
    nothing here can serve the ask, so it must not keep the loop's wait at zero."""
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        passes = SyncPasses(p.worker.sync)
        assert await passes.start() == 2
        await passes.drain()
        assert passes.next_due_in(30.0) > 0.5
        p.worker.rt.sync_soon.ask("gone", p.clock.now())
        assert passes.next_due_in(30.0) > 0.5
    finally:
        await p.close()
