"""End to end: 1,000 boots on one sim cloud, driven by the real controllers in real time.

One sim cloud (api_latency_ms = 50, boot_seconds = 2.0, concurrency 50), SQLite, one
`Worker(rt).run(stop)` on a `SystemClock`. The 1,000 servers are created through
`ServerService.create` in one request (min_count = max_count = 1000); the clock starts when
that request has committed and stops when every server reads ACTIVE in the database.

Two yardsticks, both from this run:

- the provider-limited bound, 1000 x 0.05 s / 50 + 2 s = 3.0 s (the issue's target is a
  makespan of at most 1.3 x that);
- the sim driver alone: `SimCompute.create` for the same 1,000 specs under an
  `asyncio.Semaphore(50)`, then `list()` until every server reports running: the best any
  controller could do on this machine, and the CPU the cloud side costs in this process.

Controller CPU per server = (process CPU from commit to all-ACTIVE, minus the CPU of the
progress polls this benchmark makes) / 1000, minus the sim-alone run's CPU / 1000. Process
CPU counts every thread, so the sim's SQLite work (wherever it runs) is in both terms.
Best of `--repeats` by makespan (the machine is shared; slower runs measure other work).
The run is on the event loop `canopy worker` runs its controllers on (canopy/event_loop.py:
uvloop where installed); `--loop asyncio` runs it on the standard library's.

Run alone: .venv/bin/python -m bench.end_to_end [--repeats 3] [--poll 0.05] [--sync 0.5]
           [--breakdown]   (adds CPU per controller step, each measured alone)
           [--loop auto|uvloop|asyncio]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench.common import (
    Result,
    cpu_seconds,
    machine,
    pg_create,
    pg_drop,
    pg_version,
    print_machine,
    quiet_logs,
    scratch_name,
    served_process,
    table,
)
from canopy import event_loop
from canopy.bootstrap import ensure_project, open_database, seed
from canopy.config import Settings, SimSettings, load_settings
from canopy.controllers.runtime import Runtime
from canopy.controllers.worker import Worker
from canopy.domain.clock import SystemClock
from canopy.domain.context import RequestContext
from canopy.domain.specs import Resources, ServerSpec
from canopy.domain.states import RemoteState, ServerStatus
from canopy.providers.registry import build_drivers
from canopy.providers.sim.driver import SimCompute
from canopy.services.servers import CreateServer, ServerService
from canopy.store.db import Database
from canopy.store.models import Server

SCENARIO = "end_to_end"
N = 1000
LATENCY_S = 0.05
BOOT_S = 2.0
CONCURRENCY = 50
BOUND = N * LATENCY_S / CONCURRENCY + BOOT_S  # 3.0 s
TARGET = 1.3  # x BOUND
PROGRESS_EVERY = 0.05  # seconds between the benchmark's own progress polls
FLAVOR = "m1.tiny"  # 1 vcpu, 512 MB, 1 GB
# The controllers' timing, both at their defaults. POLL (`poll_seconds`) is only a safety
# net: a loop is woken when work reaches it (the API's commit, placement handing servers
# to provisioning, a finished call). SYNC (`sync_seconds`) is the sync interval at rest;
# while the cloud has servers being created or building, sync lists its changes every
# `sync_converging_seconds` (default 0.5 s), so a finished boot is seen ACTIVE at most
# that (+ one pass) later.
POLL = 0.5
SYNC = 2.0


def sim_settings(latency: float = LATENCY_S, boot: float = BOOT_S) -> dict[str, Any]:
    # 100 hosts x 16 vcpus: room for all 1,000 with no capacity error. Atomic creates (EC2
    # with a ClientToken): one API call per create, as the bound above counts; a Nova-like
    # create is two (a lookup, then the create), which the tests cover for correctness.
    return {
        "atomic_create": True,
        "hosts": 100,
        "host_vcpus": 16,
        "host_ram_mb": 65536,
        "boot_seconds": boot,
        "api_latency_ms": latency * 1000,
        "seed": 1,
    }


def make_settings(
    data_dir: Path,
    poll: float,
    sync: float,
    sim: dict[str, Any] | None = None,
    url: str | None = None,
) -> Settings:
    return load_settings(
        None,
        env={},
        overrides={
            "data_dir": str(data_dir),
            "database": {"url": url or f"sqlite+aiosqlite:///{data_dir}/canopy.db"},
            "clouds": [
                {
                    "name": "sim",
                    "driver": "sim",
                    "tier": 0,
                    "concurrency": CONCURRENCY,
                    "sim": sim or sim_settings(),
                }
            ],
            "controllers": {"poll_seconds": poll, "sync_seconds": sync},
        },
    )


@dataclass(slots=True)
class Run:
    makespan: float
    cpu: float
    # seconds after commit at which the last server left each phase (from the progress polls)
    milestones: dict[str, float] = field(default_factory=dict)
    polls: int = 0


async def _progress(db: Database) -> tuple[int, int, int]:
    """(placed, created remotely, ACTIVE) counts, in one cheap read."""
    async with db.read() as s:
        row = (
            await s.execute(
                select(
                    func.count(Server.cloud),
                    func.count(Server.remote_id),
                    func.count().filter(Server.status == ServerStatus.ACTIVE),
                )
            )
        ).one()
    return int(row[0]), int(row[1]), int(row[2])


async def poll_cost(db: Database, k: int = 30) -> float:
    """CPU seconds one progress poll costs, measured on the populated database."""
    c0 = cpu_seconds()
    for _ in range(k):
        await _progress(db)
    return (cpu_seconds() - c0) / k


async def controllers_run(
    poll: float,
    sync: float,
    limit_s: float = 120.0,
    backend: str = "sqlite",
    url: str | None = None,
) -> tuple[Run, float]:
    """One run of the controllers; returns it and the CPU cost of one progress poll.

    `backend` "postgres" runs it on a new scratch database on the local PostgreSQL.
    """
    if backend == "postgres" and url is None:
        name = scratch_name("e2e")
        made = await pg_create(name)
        try:
            return await controllers_run(poll, sync, limit_s, backend, made)
        finally:
            await pg_drop(name)
    tmp = Path(tempfile.mkdtemp(prefix="canopy-bench-e2e-"))
    settings = make_settings(tmp, poll, sync, url=url)
    clock = SystemClock()
    db = await open_database(settings)
    drivers = build_drivers(settings, clock)
    try:
        await seed(db, settings, clock)
        project = await ensure_project(
            db, clock, "bench", quotas={"instances": -1, "cores": -1, "ram": -1}
        )
        ctx = RequestContext(project_id=project, user_id="bench")
        service = ServerService(db, settings, clock)
        rt = Runtime(db=db, settings=settings, drivers=drivers, clock=clock, worker_id="bench")
        worker = Worker(rt)
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        await asyncio.sleep(0.5)  # the worker is up and idle, its first sync pass done
        # From here the process runs as `canopy worker` does once it is up.
        with served_process():
            req = CreateServer(name="vm", flavor=FLAVOR, image="cirros", min_count=N, max_count=N)
            made = await service.create(ctx, req)
            assert len(made) == N
            t0, c0 = time.perf_counter(), cpu_seconds()
            rt.wake.set()  # as the API does after its commit (api.deps.wake_after_commit)
            milestones: dict[str, float] = {}
            polls = 0
            while True:
                placed, created, active = await _progress(db)
                polls += 1
                now = time.perf_counter() - t0
                for name, count in (("placed", placed), ("created", created)):
                    if count == N and name not in milestones:
                        milestones[name] = now
                if active == N:
                    break
                if now > limit_s:
                    raise RuntimeError(f"not all ACTIVE after {limit_s}s: {placed=} {created=}")
                await asyncio.sleep(PROGRESS_EVERY)
            makespan, cpu = time.perf_counter() - t0, cpu_seconds() - c0
            milestones["active"] = makespan
            # Worker.run cancels its loops, maybe mid-transaction; the pool then logs the
            # cancelled rollback at ERROR. Harmless here (the run is over), so not shown.
            pool_log = logging.getLogger("sqlalchemy.pool")
            level = pool_log.level
            pool_log.setLevel(logging.CRITICAL)
            stop.set()
            await task
            await asyncio.sleep(0.1)
            pool_log.setLevel(level)
        cost = await poll_cost(db)
        sim = drivers["sim"]
        assert isinstance(sim, SimCompute)
        remote = len(await sim.all_servers())
        if remote != N:  # a duplicate create would make every figure meaningless
            raise RuntimeError(f"the sim cloud has {remote} servers, expected {N}")
        return Run(makespan, cpu, milestones, polls), cost
    finally:
        for d in drivers.values():
            await d.close()
        await db.dispose()
        shutil.rmtree(tmp, ignore_errors=True)


async def sim_alone_run(latency: float = LATENCY_S, boot: float = BOOT_S) -> Run:
    """The sim driver alone: the same creates under a Semaphore(50), then list() until done."""
    tmp = Path(tempfile.mkdtemp(prefix="canopy-bench-sim-"))
    sim = SimSettings(**sim_settings(latency, boot))
    driver = SimCompute("sim", sim, tmp / "sim.db", SystemClock(), 1)
    try:
        await driver.capacity()  # create the state file and its hosts before the clock starts
        specs = [
            ServerSpec(
                canopy_id=str(uuid.uuid4()),
                name=f"vm-{i + 1}",
                flavor_name=FLAVOR,
                resources=Resources(1, 512, 1, 1),
                remote_flavor=FLAVOR,
                remote_image="cirros",
            )
            for i in range(N)
        ]
        sem = asyncio.Semaphore(CONCURRENCY)

        async def create(spec: ServerSpec) -> None:
            async with sem:
                await driver.create(spec)

        with served_process():  # as the controllers' run is measured
            t0, c0 = time.perf_counter(), cpu_seconds()
            await asyncio.gather(*(create(s) for s in specs))
            created = time.perf_counter() - t0
            polls = 0
            while True:
                polls += 1
                servers = await driver.list()
                if sum(1 for r in servers if r.state == RemoteState.RUNNING) == N:
                    break
            return Run(
                time.perf_counter() - t0,
                cpu_seconds() - c0,
                {"created": created, "active": time.perf_counter() - t0},
                polls,
            )
    finally:
        await driver.close()
        shutil.rmtree(tmp, ignore_errors=True)


async def run(
    *,
    repeats: int = 3,
    poll: float = POLL,
    sync: float = SYNC,
    backends: tuple[str, ...] = ("sqlite", "postgres"),
    verbose: bool = True,
) -> list[Result]:
    """The scenario on each backend (PostgreSQL is skipped if it cannot be reached)."""
    results: list[Result] = []
    for backend in backends:
        if backend == "postgres" and await pg_version() is None:
            print("  postgres: not reachable, skipped")
            continue
        sims: list[Run] = []
        runs: list[tuple[Run, float]] = []
        for rep in range(repeats):  # interleaved, so load from elsewhere hits both alike
            sim = await sim_alone_run()
            sims.append(sim)
            ctl = await controllers_run(poll, sync, backend=backend)
            runs.append(ctl)
            if verbose:
                r, cost = ctl
                steps = ", ".join(f"{k} {v:.2f}s" for k, v in r.milestones.items())
                print(
                    f"  {backend} rep {rep}: sim alone {sim.makespan:.2f}s (cpu {sim.cpu:.2f}s);"
                    f" controllers {r.makespan:.2f}s (cpu {r.cpu:.2f}s, {r.polls} polls of "
                    f"{cost * 1e3:.1f} ms CPU; {steps})"
                )
        results += _results(backend, sims, runs, poll, sync)
    return results


def _results(
    backend: str, sims: list[Run], runs: list[tuple[Run, float]], poll: float, sync: float
) -> list[Result]:
    sim = min(sims, key=lambda r: r.makespan)
    best, cost = min(runs, key=lambda rc: rc[0].makespan)
    sim_cpu = min(r.cpu for r in sims) / N
    ctl_cpu = (best.cpu - best.polls * cost) / N
    met = best.makespan <= TARGET * BOUND
    where = ", ".join(f"all {k} at {v:.2f}s" for k, v in best.milestones.items())
    converging = Settings().controllers.sync_converging_seconds
    settings_note = (
        f"poll_seconds={poll:g}, sync_seconds={sync:g}, sync_converging_seconds={converging:g}"
    )
    # SQLite is the scenario as the issue states it; PostgreSQL is shown beside it, and its
    # CPU is this process's only (the server's work shows in the makespan).
    on = "" if backend == "sqlite" else f"{backend}: "
    cpu_note = "" if backend == "sqlite" else " (client process only)"
    return [
        Result(
            SCENARIO,
            f"{on}makespan vs provider bound",
            best.makespan,
            "s",
            baseline=BOUND,
            baseline_name="1000x0.05/50+2",
            note=f"target <= {TARGET}x: {'met' if met else 'NOT met'}; {where}",
        ),
        Result(
            SCENARIO,
            f"{on}makespan vs sim driver alone",
            best.makespan,
            "s",
            baseline=sim.makespan,
            baseline_name="sim alone",
            note=settings_note,
        ),
        Result(
            SCENARIO,
            f"{on}CPU per server, controllers + sim",
            ctl_cpu * 1e3,
            "ms",
            baseline=sim_cpu * 1e3,
            baseline_name="sim alone",
            note=f"controllers alone: {(ctl_cpu - sim_cpu) * 1e3:.2f} ms/server{cpu_note}",
        ),
    ]


async def breakdown() -> list[Result]:
    """Where the controllers' CPU goes: each step alone, one phase after the other.

    The sim answers at once (api_latency 0, boot 0), so every figure is CPU: the API's
    create of 1,000 rows, placement passes until none is left, provisioning passes (each
    drained) until none is left, one sync pass that turns all 1,000 ACTIVE, and one more
    pass, which lists the same 1,000 servers, unchanged (what every pass inside the sync
    overlap window costs). Provisioning and sync include the sim's own create and listing,
    given alongside.
    """
    tmp = Path(tempfile.mkdtemp(prefix="canopy-bench-cpu-"))
    settings = make_settings(tmp, POLL, SYNC, sim_settings(0.0, 0.0))
    clock = SystemClock()
    db = await open_database(settings)
    drivers = build_drivers(settings, clock)
    out: dict[str, float] = {}
    try:
        await seed(db, settings, clock)
        project = await ensure_project(
            db, clock, "bench", quotas={"instances": -1, "cores": -1, "ram": -1}
        )
        ctx = RequestContext(project_id=project, user_id="bench")
        rt = Runtime(db=db, settings=settings, drivers=drivers, clock=clock, worker_id="bench")
        worker = Worker(rt)
        sim = drivers["sim"]
        await sim.capacity()  # the state file exists before the clock starts
        # Capacity and flavor mappings, read as a worker does before its loops start: a
        # cloud never inventoried is not placeable.
        await worker.inventory.run_once(force=True)

        c0 = cpu_seconds()
        req = CreateServer(name="vm", flavor=FLAVOR, image="cirros", min_count=N, max_count=N)
        await ServerService(db, settings, clock).create(ctx, req)
        out["API create (ServerService, one request)"] = cpu_seconds() - c0

        c0 = cpu_seconds()
        while await worker.placement.run_once():
            pass
        out["placement (batches of 64)"] = cpu_seconds() - c0

        c0 = cpu_seconds()
        while True:
            n = await worker.provisioning.run_once()
            await worker.provisioning.drain()
            if n == 0:
                break
        out["provisioning incl. sim create (50 at a time)"] = cpu_seconds() - c0

        c0 = cpu_seconds()
        await worker.sync.sync_cloud("sim", force=True)
        out["sync: one pass, 1,000 rows turn ACTIVE"] = cpu_seconds() - c0
        async with db.read() as s:
            active = (
                await s.execute(select(func.count()).where(Server.status == ServerStatus.ACTIVE))
            ).scalar_one()
        if active != N:
            raise RuntimeError(f"{active} ACTIVE after one sync pass, expected {N}")

        c0 = cpu_seconds()
        await worker.sync.sync_cloud("sim", force=True)
        out["sync: one more pass, the 1,000 rows unchanged"] = cpu_seconds() - c0
    finally:
        for d in drivers.values():
            await d.close()
        await db.dispose()
        shutil.rmtree(tmp, ignore_errors=True)
    alone = await sim_alone_run(0.0, 0.0)
    return [
        Result(
            "end_to_end CPU",
            step,
            cpu / N * 1e3,
            "ms/server",
            baseline=alone.cpu / N * 1e3,
            baseline_name="sim create+list alone",
        )
        for step, cpu in out.items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--poll", type=float, default=POLL, help="controllers.poll_seconds")
    parser.add_argument("--sync", type=float, default=SYNC, help="controllers.sync_seconds")
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument(
        "--breakdown", action="store_true", help="also measure CPU per controller step"
    )
    parser.add_argument(
        "--loop",
        choices=["auto", "uvloop", "asyncio"],
        default="auto",
        help="the event loop the controllers run on (canopy/event_loop.py; default: as"
        " `canopy worker` runs them)",
    )
    args = parser.parse_args()
    quiet_logs()
    print_machine(machine(asyncio.run(pg_version())))
    results = event_loop.run(
        run(repeats=args.repeats, poll=args.poll, sync=args.sync, backends=tuple(args.backends)),
        args.loop,
    )
    if args.breakdown:
        results += event_loop.run(breakdown(), args.loop)
    print()
    print(table(results))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
