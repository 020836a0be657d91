"""The worker's loops: work handed on wakes the next loop at once, a cloud's queue of
leased rows is filled ahead of its free slots, in batches, and the heartbeat keeps the
leases of the rows in flight."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from canopy.domain.specs import RemoteServer, ServerSpec

from .harness import Plane, make_plane, statements

CLOUDS = """
[[clouds]]
name = "private"
tier = 0
concurrency = 4
[clouds.sim]
hosts = 4
host_vcpus = 16
boot_seconds = 2
"""


async def _until(check: Any, seconds: float = 10.0) -> None:
    """Wait in real time until `check()` is true (tasks in flight need the loop to run)."""
    for _ in range(int(seconds / 0.01)):
        if await check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not true after {seconds}s")


async def test_placed_servers_are_created_without_waiting_for_a_poll(
    db_url: str, tmp_path: Path
) -> None:
    # A poll so long that only notifications can move the servers within the test.
    p = await make_plane(
        db_url, tmp_path, toml=CLOUDS, overrides={"controllers": {"poll_seconds": 60}}
    )
    stop = asyncio.Event()
    task = asyncio.create_task(p.worker.run(stop))
    try:
        await asyncio.sleep(0.05)  # every loop has made its first pass and is idle
        await p.create(6)
        p.rt.wake.set()  # what the API does after its commit

        async def created() -> bool:
            return sum(s.remote_id is not None for s in await p.servers()) == 6

        # API -> placement (woken) -> provisioning (notified by placement after its commit).
        await _until(created)
    finally:
        stop.set()
        await task
        await p.close()


class _Gate:
    """Holds each create until the test lets it through; counts the calls inside."""

    def __init__(self, create: Any) -> None:
        self.create = create
        self.inside = 0
        self.peak = 0
        self.release = asyncio.Semaphore(0)

    async def __call__(self, spec: ServerSpec) -> RemoteServer:
        self.inside += 1
        self.peak = max(self.peak, self.inside)
        try:
            await self.release.acquire()
            result: RemoteServer = await self.create(spec)
            return result
        finally:
            self.inside -= 1


async def _placed(p: Plane, n: int) -> None:
    await p.create(n)
    while await p.worker.placement.run_once():
        pass


async def test_rows_are_leased_ahead_of_the_free_slots_in_batches(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    prov = p.worker.provisioning
    gate = _Gate(p.sim("private").create)
    p.sim("private").create = gate  # type: ignore[method-assign]
    try:
        await _placed(p, 20)
        # Concurrency 4: four calls run, four more rows wait for a slot, leased already.
        assert await prov.run_once() == 8
        await _until(lambda: _true(gate.inside == 4))
        assert prov.busy("private") == 8
        # A full queue costs nothing: no statement, not even a read.
        with statements(p.db) as seen:
            assert await prov.run_once() == 0
        assert seen == []
        # One finished call frees one place: less than half the limit, so no lease yet.
        gate.release.release()
        await _until(lambda: _true(prov.busy("private") == 7))
        with statements(p.db) as seen:
            assert await prov.run_once() == 0
        assert seen == []
        # A second one: two places, half the limit: one lease transaction fills both.
        gate.release.release()
        await _until(lambda: _true(prov.busy("private") == 6))
        assert await prov.run_once() == 2
        assert prov.busy("private") == 8
        for _ in range(20):
            gate.release.release()

        async def finished() -> bool:
            return await prov.run_once() == 0 and prov.inflight == 0

        await _until(finished)
        assert gate.peak == 4  # the cloud's limit held throughout
        assert sum(s.remote_id is not None for s in await p.servers()) == 20
        assert len(await p.sim("private").all_servers()) == 20
    finally:
        await prov.drain()
        await p.close()


async def _true(value: bool) -> bool:
    return value


async def test_rows_are_leased_ahead_even_when_a_lease_is_shorter_than_a_call(
    db_url: str, tmp_path: Path
) -> None:
    # The heartbeat renews the waiting rows' leases: no lease length makes leasing ahead
    # unsafe, so a short lease (here 3 s against a 10 s call timeout) leases ahead too.
    short = {"controllers": {"lease_seconds": 3.0, "call_timeout_seconds": 10.0}}
    p = await make_plane(db_url, tmp_path, toml=CLOUDS, overrides=short)
    prov = p.worker.provisioning
    gate = _Gate(p.sim("private").create)
    p.sim("private").create = gate  # type: ignore[method-assign]
    try:
        await _placed(p, 10)
        assert await prov.run_once() == 8  # four calls, four waiting for a slot
        for _ in range(10):
            gate.release.release()
    finally:
        await prov.drain()
        await p.close()


async def test_the_heartbeat_keeps_a_call_alive_past_its_lease(db_url: str, tmp_path: Path) -> None:
    # Without renewals a call is cut when its lease would run out (2.7 s after the fence):
    # the worker's heartbeat (every second) lets this one run twice as long, to the end.
    short = {"controllers": {"lease_seconds": 3.0, "call_timeout_seconds": 60.0}}
    p = await make_plane(db_url, tmp_path, toml=CLOUDS, overrides=short)
    prov = p.worker.provisioning
    gate = _Gate(p.sim("private").create)
    p.sim("private").create = gate  # type: ignore[method-assign]
    stop = asyncio.Event()
    heart = asyncio.create_task(p.worker._heartbeat(stop))
    try:
        await _placed(p, 1)
        assert await prov.run_once() == 1
        await _until(lambda: _true(gate.inside == 1))
        await asyncio.sleep(2 * p.rt.lease_seconds)
        assert gate.inside == 1  # still in the call
        gate.release.release()
        await prov.drain()
        [server] = await p.servers()
        assert server.remote_id is not None and server.claimed_by is None
        assert len(await p.sim("private").all_servers()) == 1
    finally:
        stop.set()
        await heart
        for _ in range(10):
            gate.release.release()
        await prov.drain()
        await p.close()


async def test_the_apis_wake_reaches_only_the_loops_it_names(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    told: list[tuple[str, ...]] = []
    p.rt.notify = lambda *loops: told.append(loops)  # type: ignore[method-assign]
    stop = asyncio.Event()
    relay = asyncio.create_task(p.worker._relay(stop))
    try:
        p.rt.wake.ask("placement")  # a server create
        await _until(lambda: _true(len(told) == 1))
        p.rt.wake.set()  # anything else: every loop
        await _until(lambda: _true(len(told) == 2))
        assert told == [("placement",), ()]
    finally:
        relay.cancel()
        await p.close()


async def test_an_idle_power_pass_does_not_wake_the_stack_loop(db_url: str, tmp_path: Path) -> None:
    """Stacks waiting on deletes hear of a power pass that started steps, and of the
    first pass after a step ended; an idle pass wakes nothing (the stack loop polls)."""
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        (sid,) = await p.create(1)
        await p.run_until(lambda: p.count(status="ACTIVE"))
        told: list[tuple[str, ...]] = []
        p.rt.notify = lambda *loops: told.append(loops)  # type: ignore[method-assign]
        assert await p.worker._power_pass() == 0
        assert told == []
        await p.service.delete(p.ctx, sid)
        assert await p.worker._power_pass() == 1  # the delete's step starts
        assert ("orchestration",) in told
        await p.worker.power.drain()  # ... and ends
        told.clear()
        assert await p.worker._power_pass() == 0
        assert ("orchestration",) in told
        told.clear()
        assert await p.worker._power_pass() == 0
        assert told == []
    finally:
        await p.close()
