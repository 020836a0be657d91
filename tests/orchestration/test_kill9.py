"""kill -9 of a real `canopy worker` during stack creates, updates and deletes: every stack
reaches a terminal state, none stays IN_PROGRESS, and no server is left without a stack
resource that owns it (none orphaned, none made twice)."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from canopy.orchestration.service import StackService
from canopy.providers.registry import build_drivers
from canopy.providers.sim.driver import SimCompute
from canopy.store.db import Database
from canopy.store.models import Server, Stack, StackResource
from tests.controllers.procs import WorkerProcess, installed

from .helpers import hot, server

pytestmark = pytest.mark.slow

SIM = """boot_seconds = 1.5
boot_jitter = 0.5
api_latency_ms = 5
latency_jitter = 0.5
action_seconds = 0.1
lost_response_rate = 0.03
transient_error_rate = 0.02
"""


def config(tmp_path: Path, db_url: str) -> Path:
    cfg = tmp_path / "canopy.toml"
    cfg.write_text(
        f"""data_dir = "{tmp_path}"
[database]
url = "{db_url}"
[controllers]
lease_seconds = 1.5
poll_seconds = 0.05
sync_seconds = 0.3
full_sync_every = 3
call_timeout_seconds = 1.0
backoff_base_seconds = 0.1
backoff_max_seconds = 0.5
[[clouds]]
name = "private"
tier = 0
[clouds.sim]
hosts = 4
host_vcpus = 16
seed = 1
{SIM}
[[clouds]]
name = "public"
tier = 1
[clouds.sim]
hosts = 100
host_vcpus = 64
price_per_vcpu_hour = 0.05
seed = 2
{SIM}
"""
    )
    return cfg


def shape(flavor: str, width: int) -> dict[str, Any]:
    """A base server, `width` servers that need it, and a value that needs them all."""
    res: dict[str, Any] = {"base": server(flavor=flavor)}
    for i in range(width):
        res[f"vm{i}"] = server(metadata={"base": {"get_resource": "base"}})
    res["done"] = {
        "type": "OS::Heat::Value",
        "properties": {"value": [{"get_attr": [f"vm{i}", "name"]} for i in range(width)]},
    }
    return hot(res)


async def _stacks(db: Database) -> dict[str, Stack]:
    async with db.read() as s:
        return {x.name: x for x in (await s.execute(select(Stack))).scalars()}


async def _kill_while_busy(
    db: Database, worker: WorkerProcess, rng: random.Random, times: int
) -> list[set[str]]:
    """Kill -9 and restart the worker `times` times; at each kill, the stacks' states that
    were in progress then (e.g. {"CREATE_IN_PROGRESS"}; empty: the kill found none busy)."""
    seen: list[set[str]] = []
    for _ in range(times):
        await asyncio.sleep(rng.uniform(1.0, 2.0))  # a worker takes about a second to start
        assert worker.alive(), worker.log.read_text()[-3000:]
        stacks = (await _stacks(db)).values()
        seen.append({f"{x.action}_{x.status}" for x in stacks if x.status == "IN_PROGRESS"})
        worker.kill9()
        worker.start()
    return seen


async def _terminal(db: Database, seconds: float) -> dict[str, Stack]:
    deadline = time.monotonic() + seconds
    while True:
        stacks = await _stacks(db)
        busy = {n: (x.action, x.status) for n, x in stacks.items() if x.status == "IN_PROGRESS"}
        if not busy:
            return stacks
        assert time.monotonic() < deadline, f"stuck IN_PROGRESS: {busy}"
        await asyncio.sleep(0.3)


async def test_kill_minus_nine_during_create_update_and_delete(db_url: str, tmp_path: Path) -> None:
    rng = random.Random(20261204)
    cfg = config(tmp_path, db_url)
    settings, clock, db, ctx = await installed(cfg, "kill9")
    svc = StackService(settings, clock)
    worker = WorkerProcess(cfg, tmp_path / "worker.log")
    names = [f"st{i}" for i in range(4)]
    try:
        worker.start()
        # Create: four stacks of 6 servers each, the worker killed twice while they build.
        for name in names:
            async with db.session() as s:
                await svc.create(s, ctx, name, {"template": shape("m1.small", 5)})
        kills = await _kill_while_busy(db, worker, rng, 2)
        stacks = await _terminal(db, 90)
        assert {(x.action, x.status) for x in stacks.values()} == {("CREATE", "COMPLETE")}, {
            n: x.status_reason for n, x in stacks.items()
        }
        # Update two (the base server replaced, one dependent removed), delete the others,
        # the worker killed twice meanwhile.
        for name in names[:2]:
            async with db.session() as s:
                stack = await svc.find(s, ctx.project_id, name, lock=True)
                await svc.update(s, ctx, stack, {"template": shape("m1.medium", 4)}, patch=False)
        for name in names[2:]:
            async with db.session() as s:
                await svc.delete(s, await svc.find(s, ctx.project_id, name, lock=True))
        kills += await _kill_while_busy(db, worker, rng, 2)
        stacks = await _terminal(db, 90)
        assert worker.starts == 5
        # The kills landed while stacks were being worked on, in each of the three actions.
        assert sum(1 for busy in kills if busy) >= 3, kills
        # A kill of the delete phase lands mid-delete only while the deletes still run (on
        # a loaded machine they may be over): the create and update phases always are.
        for state in ("CREATE_IN_PROGRESS", "UPDATE_IN_PROGRESS"):
            assert any(state in busy for busy in kills), (state, kills)
        states = {n: (x.action, x.status, x.deleted) for n, x in stacks.items()}
        assert states == {
            "st0": ("UPDATE", "COMPLETE", False),
            "st1": ("UPDATE", "COMPLETE", False),
            "st2": ("DELETE", "COMPLETE", True),
            "st3": ("DELETE", "COMPLETE", True),
        }, {n: x.status_reason for n, x in stacks.items()}

        # Every live server is owned by exactly one resource of a live stack, and the other
        # way round; the clouds hold exactly those (leaks are collected by sync).
        deadline = time.monotonic() + 60
        drivers = build_drivers(settings, clock)
        try:
            while True:
                async with db.read() as s:
                    live = {
                        x.id: x
                        for x in (
                            await s.execute(select(Server).where(Server.deleted.is_(False)))
                        ).scalars()
                    }
                    rows = list((await s.execute(select(StackResource))).scalars())
                remote = [r for d in drivers.values() for r in await _all(d)]
                settled = all(x.status == "ACTIVE" for x in live.values())
                if settled and len(remote) == len(live):
                    break
                assert time.monotonic() < deadline, (
                    len(remote),
                    Counter(x.status for x in live.values()),
                )
                await asyncio.sleep(0.5)
        finally:
            for d in drivers.values():
                await d.close()
        owners = Counter(r.server_id for r in rows if r.server_id)
        assert all(n == 1 for n in owners.values()), owners
        assert set(owners) == set(live), "a server with no stack resource, or the reverse"
        assert {r.stack_id for r in rows} == {stacks["st0"].id, stacks["st1"].id}
        assert len(live) == 2 * 5  # base + 4 dependents, in each updated stack
        flavors = {r.name: live[r.server_id].flavor_id for r in rows if r.server_id}
        assert flavors["base"] != flavors["vm0"]  # the base was replaced by an m1.medium
        assert sorted(r.canopy_id for r in remote) == sorted(live)
    finally:
        worker.stop()
        await db.dispose()


async def _all(d: object) -> list[Any]:
    assert isinstance(d, SimCompute)
    return list(await d.all_servers())
