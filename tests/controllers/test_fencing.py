"""A lease is a fence: a step is never run twice at once, by this worker or another.

The create of the sim cloud is wrapped so that it waits until the test lets it through and
counts its calls (no real part can hold a call open on demand). The fake clock moves past
`lease_seconds` while a create is held open; the provisioning passes of this worker and of
a second worker (another Runtime, another worker id, the same database) run meanwhile.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY
from sqlalchemy import select

from canopy.controllers.provisioning import ProvisioningController
from canopy.controllers.runtime import Runtime
from canopy.domain.specs import RemoteServer, ServerSpec
from canopy.store.leases import lease_servers
from canopy.store.models import Server

from .harness import Plane, make_plane, statements

CLOUDS = """
[[clouds]]
name = "private"
tier = 0
concurrency = {concurrency}
[clouds.sim]
hosts = 4
host_vcpus = 16
boot_seconds = 2
"""


class _Held:
    """The sim's create, held open until released; counts its calls per server."""

    def __init__(self, create: Any) -> None:
        self.create = create
        self.calls: Counter[str] = Counter()
        self.inside = 0
        self.release = asyncio.Event()

    async def __call__(self, spec: ServerSpec) -> RemoteServer:
        self.calls[spec.canopy_id] += 1
        self.inside += 1
        try:
            await self.release.wait()
            result: RemoteServer = await self.create(spec)
            return result
        finally:
            self.inside -= 1


async def _plane(db_url: str, tmp_path: Path, concurrency: int = 4) -> tuple[Plane, _Held]:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS.format(concurrency=concurrency))
    held = _Held(p.sim("private").create)
    p.sim("private").create = held  # type: ignore[method-assign]
    return p, held


async def _placed(p: Plane, n: int) -> list[str]:
    ids = await p.create(n)
    while await p.worker.placement.run_once():
        pass
    return ids


async def _until(check: Any, seconds: float = 10.0) -> None:
    """Wait in real time until `check()` holds (tasks in flight need the loop to run)."""
    for _ in range(int(seconds / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not true after {seconds}s")


def _second_worker(p: Plane) -> ProvisioningController:
    rt = Runtime(
        db=p.db,
        settings=p.settings,
        drivers=p.rt.drivers,
        clock=p.clock,
        worker_id="second-worker",
        rng=random.Random(2),
    )
    return ProvisioningController(rt)


async def _rows(p: Plane) -> dict[str, Server]:
    async with p.db.read() as s:
        return {r.id: r for r in (await s.execute(select(Server))).scalars()}


def _steps(outcome: str) -> float:
    labels = {"controller": "provisioning", "outcome": outcome}
    return REGISTRY.get_sample_value("canopy_controller_steps_total", labels) or 0.0


async def test_a_create_held_past_its_lease_is_not_run_again_by_the_same_worker(
    db_url: str, tmp_path: Path
) -> None:
    p, held = await _plane(db_url, tmp_path)
    prov = p.worker.provisioning
    try:
        [sid] = await _placed(p, 1)
        assert await prov.run_once() == 1
        await _until(lambda: held.inside == 1)
        # No heartbeat runs here: by the database the lease has run out, but this worker
        # is still in the create. Its in-flight set keeps the row from a second step.
        p.clock.advance(p.settings.controllers.lease_seconds + 1)
        for _ in range(3):
            assert await prov.run_once() == 0
            await asyncio.sleep(0.01)
        assert held.calls == {sid: 1}
        held.release.set()
        await prov.drain()
        assert held.calls == {sid: 1}
        assert [r.canopy_id for r in await p.sim("private").all_servers()] == [sid]
        row = (await _rows(p))[sid]
        assert row.remote_id is not None and row.claimed_by is None
    finally:
        held.release.set()
        await prov.drain()
        await p.close()


async def test_a_create_held_past_its_lease_is_not_run_by_a_second_worker(
    db_url: str, tmp_path: Path
) -> None:
    p, held = await _plane(db_url, tmp_path)
    prov, other = p.worker.provisioning, _second_worker(p)
    lease = p.settings.controllers.lease_seconds
    try:
        [sid] = await _placed(p, 1)
        assert await prov.run_once() == 1
        await _until(lambda: held.inside == 1)
        # Four heartbeats a third of a lease apart: held well past the lease it began with.
        for _ in range(4):
            p.clock.advance(lease / 3)
            assert await p.rt.heartbeat() == 0
            assert await other.run_once() == 0  # the row is held: not leased again
        assert held.calls == {sid: 1}
        row = (await _rows(p))[sid]
        assert row.claimed_by == p.rt.worker_id
        assert row.claim_expires_at == p.clock.now() + timedelta(seconds=lease)
        held.release.set()
        await prov.drain()
        assert await other.run_once() == 0  # created and recorded: nothing left to do
        assert held.calls == {sid: 1}
        assert [r.canopy_id for r in await p.sim("private").all_servers()] == [sid]
    finally:
        held.release.set()
        await prov.drain()
        await other.drain()
        await p.close()


async def test_a_step_whose_lease_was_taken_makes_no_call_when_its_slot_comes(
    db_url: str, tmp_path: Path
) -> None:
    # Concurrency 1: the first row's create runs (held open), the second waits for the slot.
    p, held = await _plane(db_url, tmp_path, concurrency=1)
    prov = p.worker.provisioning
    try:
        ids = await _placed(p, 2)
        lost_before = _steps("lease_lost")
        assert await prov.run_once() == 2
        await _until(lambda: held.inside == 1)
        [first] = held.calls  # in a call; the other waits for the slot
        [second] = set(ids) - {first}
        # This worker stalls (no heartbeat); after the lease another worker takes both rows.
        p.clock.advance(p.settings.controllers.lease_seconds + 1)
        async with p.db.session() as s:
            taken = await lease_servers(
                s, where=[], worker="other", now=p.clock.now(), lease_seconds=30, limit=10
            )
        assert {r.id for r in taken} == {first, second}
        until = p.clock.now() + timedelta(seconds=30)
        held.release.set()  # the call already made ends; the slot goes to the second row
        await prov.drain()
        assert held.calls == {first: 1}  # the fence refused the second row's create
        assert _steps("lease_lost") == lost_before + 1
        rows = await _rows(p)
        assert rows[second].claimed_by == "other"
        assert rows[second].claim_expires_at == until  # the fence renewed nothing
        assert rows[second].remote_id is None
    finally:
        held.release.set()
        await prov.drain()
        await p.close()


async def test_the_heartbeat_renews_every_row_in_flight_in_one_statement(
    db_url: str, tmp_path: Path
) -> None:
    p, held = await _plane(db_url, tmp_path, concurrency=4)
    prov, other = p.worker.provisioning, _second_worker(p)
    lease = p.settings.controllers.lease_seconds
    try:
        await _placed(p, 20)
        assert await prov.run_once() == 8  # four in a call, four waiting for a slot
        await _until(lambda: held.inside == 4)
        p.clock.advance(lease * 2 / 3)
        with statements(p.db) as seen:
            assert await p.rt.heartbeat() == 0
        assert len([s for s in seen if s.startswith("UPDATE servers")]) == 1
        until = p.clock.now() + timedelta(seconds=lease)
        mine = [r for r in (await _rows(p)).values() if r.claimed_by == p.rt.worker_id]
        assert len(mine) == 8 and all(r.claim_expires_at == until for r in mine)
        # Past the lease the rows were first taken with, and still held: nobody takes them.
        p.clock.advance(lease * 2 / 3)
        assert await other.run_once() == 8  # of the twelve others, not these
        assert mine[0].id not in {
            r.id for r in (await _rows(p)).values() if r.claimed_by != p.rt.worker_id
        }
    finally:
        held.release.set()
        await prov.drain()
        await other.drain()
        await p.close()


async def test_a_heartbeat_that_finds_the_lease_taken_stops_the_step_at_once(
    db_url: str, tmp_path: Path
) -> None:
    p, held = await _plane(db_url, tmp_path, concurrency=1)
    prov = p.worker.provisioning
    try:
        await _placed(p, 2)
        lost_before = _steps("lease_lost")
        calls = {"cloud": "private", "operation": "create", "outcome": "lease_lost"}
        cut_before = REGISTRY.get_sample_value("canopy_cloud_calls_total", calls) or 0.0
        assert await prov.run_once() == 2
        await _until(lambda: held.inside == 1)
        p.clock.advance(p.settings.controllers.lease_seconds + 1)
        async with p.db.session() as s:
            await lease_servers(
                s, where=[], worker="other", now=p.clock.now(), lease_seconds=30, limit=10
            )
        [first] = held.calls  # in a call; the other waits for the slot
        assert await p.rt.heartbeat() == 2
        # The create in flight is cancelled without being let through; the waiting row
        # never calls. Neither step records anything.
        await asyncio.wait_for(prov.drain(), timeout=10)
        assert held.calls == {first: 1}
        assert _steps("lease_lost") == lost_before + 2
        assert REGISTRY.get_sample_value("canopy_cloud_calls_total", calls) == cut_before + 1
        rows = await _rows(p)
        assert all(rows[i].claimed_by == "other" and rows[i].remote_id is None for i in rows)
        assert await p.sim("private").all_servers() == []
    finally:
        held.release.set()
        await prov.drain()
        await p.close()


async def test_cloud_calls_are_counted_by_cloud_operation_and_outcome(
    db_url: str, tmp_path: Path
) -> None:
    p, held = await _plane(db_url, tmp_path)
    held.release.set()
    labels = {"cloud": "private", "operation": "create", "outcome": "ok"}

    def sample(name: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    try:
        calls, timed = sample("canopy_cloud_calls_total"), sample("canopy_cloud_call_seconds_count")
        await _placed(p, 3)
        assert await p.worker.provisioning.run_once() == 3
        await p.worker.provisioning.drain()
        assert sample("canopy_cloud_calls_total") == calls + 3
        assert sample("canopy_cloud_call_seconds_count") == timed + 3
    finally:
        await p.close()


async def test_no_other_controller_of_this_worker_takes_a_row_whose_step_runs(
    db_url: str, tmp_path: Path
) -> None:
    p, held = await _plane(db_url, tmp_path)
    prov, power = p.worker.provisioning, p.worker.power
    try:
        [sid] = await _placed(p, 1)
        assert await prov.run_once() == 1
        await _until(lambda: held.inside == 1)
        p.clock.advance(p.settings.controllers.lease_seconds + 1)
        await p.service.delete(p.ctx, sid)  # the user deletes it while the create runs
        assert await power.run_once() == 0  # in flight here: the delete waits for the create
        held.release.set()
        await prov.drain()
        assert await power.run_once() == 1  # now the delete runs, and finds the server
        await power.drain()
        assert await p.sim("private").all_servers() == []
        assert (await _rows(p))[sid].deleted
    finally:
        held.release.set()
        await prov.drain()
        await power.drain()
        await p.close()
