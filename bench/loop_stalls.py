"""Loop stalls: `/healthz` latency of a `canopy up` whose controllers sync a big cloud.

A `canopy up` (API and controllers in one process, `cli.serve.serve`, SQLite) runs in a
child process with N steady servers on one sim cloud (seeded directly, the sim's state
file too, so every row is found unchanged), each with its claim, and a few reservation
leases holding claims that start later, as a real fleet has. Sync runs a full listing on every pass
(`full_sync_every = 1`, every `sync_seconds` = 2 s), the heaviest thing a controller does
at rest. From this process, a probe asks `/healthz` every 20 ms for `--seconds` and
records each answer's latency: a stall of the child's event loop shows as a slow answer.

Each repeat probes twice on the same child: idle first, then under load for as long
(bench/stall_load.py, from a process of its own): 1% of the sim's servers drift between
sync polls (half stopped, half deleted behind canopy's back), 5 HTTP clients create
servers (at most 10/s together) and 20 keep-alive clients walk the detail list in pages of
100 (at most 40 pages/s together), all through real HTTP.

Baseline in the same run: the same with 1,000 servers. Figures: p50, p99 and max, best
and median over `--repeats` (the machine is shared: each repeat is a fresh child).

The load average at the start of the run is in every row's note.

Run alone: .venv/bin/python -m bench.loop_stalls [--servers 100000] [--seconds 12] [--repeats 3]
    [--create-rate 10] [--readers 20] [--read-rate 40] (--read-rate 0: readers unpaced)
    [--in-step] (the load's clients in step: a burst of 20 pages every half second)
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import http.client
import multiprocessing
import os
import shutil
import signal
import socket
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import Result, machine, print_machine, quiet_logs, table
from bench.reads_setup import make_token
from bench.seed import seed_claims, seed_servers, seed_sim
from bench.stall_load import LoadSpec, Tally, run_load
from canopy.bootstrap import ensure_project, open_database, seed
from canopy.config import Settings, load_settings
from canopy.controllers.runtime import Runtime
from canopy.controllers.worker import Worker
from canopy.domain.clock import SystemClock
from canopy.domain.context import RequestContext
from canopy.providers.registry import build_drivers
from canopy.providers.sim.driver import SimCompute
from canopy.reservations.service import LeaseService
from canopy.services.servers import ServerService
from canopy.store.db import Database

SCENARIO = "loop_stalls"
BASELINE = 1000
PROBE_EVERY = 0.02
TARGET_P99_MS = 20.0
TARGET_MAX_MS = 100.0
LEASES = 5  # reservation leases with future claims, beside the servers' own claims
LIMITS = {"instances": 10_000_000, "cores": 10_000_000, "ram": 2_000_000_000}  # int32
STATES = ("idle", "under load")
TRACE_ENV = "CANOPY_BENCH_STALL_TRACE"  # where the child writes its stall trace
STEPS_ENV = "CANOPY_BENCH_LOOP_STEPS"  # where the child writes its long steps
Figures = tuple[float, float, float]  # p50, p99, max (ms)


def overrides(data_dir: Path, port: int) -> dict[str, Any]:
    return {
        "data_dir": str(data_dir),
        "api": {"host": "127.0.0.1", "port": port},
        "worker": {"metrics": False},
        "clouds": [
            {
                "name": "sim",
                "driver": "sim",
                "tier": 0,
                "sim": {"hosts": 10, "host_vcpus": 100000, "host_ram_mb": 10**8, "seed": 1},
            }
        ],
        "controllers": {"full_sync_every": 1},
    }


def _settings(data_dir: Path, port: int) -> Settings:
    return load_settings(None, env={}, overrides=overrides(data_dir, port))


async def prepare(data_dir: Path, n: int) -> str:
    """The database and the sim's state file, holding `n` steady servers on `sim`, in
    project `bench` (quotas large but finite, so every create checks usage); a member's
    token for the load's clients."""
    settings = _settings(data_dir, 0)
    clock = SystemClock()
    db = await open_database(settings)
    drivers = build_drivers(settings, clock)
    try:
        await seed(db, settings, clock)
        project = await ensure_project(db, clock, "bench", quotas=LIMITS)
        sim = drivers["sim"]
        assert isinstance(sim, SimCompute)
        await sim.capacity()  # creates the state file and its hosts
        when = datetime.now(UTC) - timedelta(hours=1)
        seeded = await seed_servers(
            db, project=project, cloud="sim", n=n, flavor="1", when=when, addresses=True
        )
        await seed_claims(db, cloud="sim", servers=seeded, flavor="1", when=when)
        rt = Runtime(db=db, settings=settings, drivers=drivers, clock=clock, worker_id="bench")
        await Worker(rt).inventory.run_once(force=True)  # the leases are placed on it
        await seed_leases(db, settings, clock, project)
        await sim.close()
        first = seed_sim(data_dir / "sim-sim.db", seeded, when_us=int(when.timestamp() * 1e6))
        assert first == 1, "the sim's state file held servers already"
        token, _ = await make_token(db)
        return token
    finally:
        for d in drivers.values():
            await d.close()
        await db.dispose()


async def seed_leases(db: Database, settings: Settings, clock: SystemClock, project: str) -> None:
    """A few reservation leases, as a real fleet holds: future claims on the cloud, so
    placement's peak queries and the lease loop have their claims to read."""
    leases = LeaseService(settings, clock, ServerService(db, settings, clock))
    ctx = RequestContext(project_id=project, user_id="bench")
    start = clock.now().replace(second=0, microsecond=0) + timedelta(hours=1)
    for i in range(LEASES):
        begin = start + timedelta(hours=i)
        body = {
            "name": f"bench-{i}",
            "start_date": begin.strftime("%Y-%m-%d %H:%M"),
            "end_date": (begin + timedelta(hours=2)).strftime("%Y-%m-%d %H:%M"),
            "reservations": [
                {
                    "resource_type": "virtual:instance",
                    "amount": 10,
                    "vcpus": 1,
                    "memory_mb": 512,
                    "disk_gb": 0,
                    "affinity": "False",
                    "resource_properties": "",
                }
            ],
            "events": [],
        }
        async with db.session() as s:
            await leases.create(s, ctx, body)


def _serve(data_dir: str, port: int) -> None:
    """The child: `canopy up` as the CLI runs it (with TRACE_ENV set, its stalls traced;
    with STEPS_ENV, its long steps timed)."""
    from canopy import event_loop
    from canopy.cli.serve import serve

    quiet_logs()
    settings = _settings(Path(data_dir), port)
    trace = os.environ.get(TRACE_ENV)
    steps = os.environ.get(STEPS_ENV)

    async def traced() -> None:
        if steps:
            from bench.loop_steps import install as time_steps

            time_steps(Path(f"{steps}.{os.getpid()}"))
        if trace:
            from bench.stall_trace import install

            install(Path(f"{trace}.{os.getpid()}"))
        await serve(settings, api=True, worker=True, banner=False)

    # Steps are timed by patching asyncio.Handle, which uvloop's loop does not run: with
    # --trace-steps the child runs on the standard library's loop (and says so).
    event_loop.run(traced(), "asyncio" if steps else settings.event_loop)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def probe(port: int, seconds: float) -> list[float]:
    """Latencies (ms) of /healthz, one request every PROBE_EVERY seconds."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    out: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        conn.request("GET", "/healthz")
        resp = conn.getresponse()
        resp.read()
        out.append((time.perf_counter() - t0) * 1000)
        if resp.status != 200:
            raise RuntimeError(f"/healthz answered {resp.status}")
        time.sleep(max(0.0, PROBE_EVERY - (time.perf_counter() - t0)))
    conn.close()
    return out


def _wait_up(port: int, limit: float = 120.0) -> None:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("canopy up did not answer /healthz in time")


def pct(xs: list[float], q: float) -> float:
    ys = sorted(xs)
    return ys[min(len(ys) - 1, int(q * len(ys)))]


def under_load(port: int, token: str, spec: LoadSpec, seconds: float) -> tuple[Figures, Tally]:
    """/healthz while the load process runs: (p50, p99, max), and what the load did."""
    ctx = multiprocessing.get_context("spawn")
    stop, ready, out = ctx.Event(), ctx.Event(), ctx.Queue()
    loader = ctx.Process(target=run_load, args=(port, token, spec, stop, ready, out))
    loader.start()
    try:
        # The loader's start (a spawned interpreter) is not load yet.
        if not ready.wait(120):
            raise RuntimeError("the load process did not start")
        time.sleep(0.5)
        lat = probe(port, seconds)
    finally:
        stop.set()
    tally: Tally = out.get(timeout=120)
    loader.join(30)
    if tally.first_error:
        print(f"   load error: {tally.first_error}", flush=True)
    return (pct(lat, 0.5), pct(lat, 0.99), max(lat)), tally


def one_run(
    n: int, seconds: float, settle: float = 3.0, spec: LoadSpec | None = None
) -> dict[str, tuple[Figures, Tally | None]]:
    """(p50, p99, max) of /healthz in ms with `n` servers, idle and under load (without
    `spec`: idle only)."""
    tmp = Path(tempfile.mkdtemp(prefix="canopy-bench-stalls-"))
    child = None
    try:
        token = asyncio.run(prepare(tmp, n))
        port = _free_port()
        child = multiprocessing.get_context("spawn").Process(target=_serve, args=(str(tmp), port))
        child.start()
        _wait_up(port)
        time.sleep(settle)  # the first full sync (a pass over every row) is start-up
        lat = probe(port, seconds)
        out: dict[str, tuple[Figures, Tally | None]] = {
            STATES[0]: ((pct(lat, 0.5), pct(lat, 0.99), max(lat)), None)
        }
        if spec is not None:
            if os.environ.get(TRACE_ENV) and child.pid is not None:
                os.kill(child.pid, signal.SIGUSR1)  # the trace's idle phase ends here
            state_file = str(tmp / "sim-sim.db")
            load = dataclasses.replace(spec, servers=n, state_file=state_file)
            out[STATES[1]] = under_load(port, token, load, seconds)
        return out
    finally:
        if child is not None and child.pid is not None:
            os.kill(child.pid, signal.SIGTERM)
            child.join(30)
            if child.is_alive():
                child.kill()
                child.join()
        shutil.rmtree(tmp, ignore_errors=True)


def run(
    servers: int = 100_000,
    seconds: float = 12.0,
    repeats: int = 3,
    baseline: int = BASELINE,
    settle: float = 3.0,
    spec: LoadSpec | None = None,
) -> list[Result]:
    spec = spec or LoadSpec(servers=0, state_file="")
    loadavg = os.getloadavg()[0]
    figures: dict[tuple[str, int], list[Figures]] = {}
    tallies: dict[int, list[Tally]] = {}
    for _ in range(repeats):
        for n in (baseline, servers):
            for state, (figs, tally) in one_run(n, seconds, settle, spec).items():
                figures.setdefault((state, n), []).append(figs)
                print(f"   {n:>7} servers, {state}: p50/p99/max {figs}", flush=True)
                if tally is not None:
                    tallies.setdefault(n, []).append(tally)
                    print(f"   {n:>7} servers, load: {tally.summary()}", flush=True)
    out = []
    for state in STATES:
        base = figures[(state, baseline)]
        mine = figures[(state, servers)]
        clients = "in step" if spec.in_step else "at random phases"
        load = f"; load ({clients}): {tallies[servers][-1].summary()}" if state != STATES[0] else ""
        for i, label in enumerate(("p50", "p99", "max")):
            vals = [f[i] for f in mine]
            bvals = [f[i] for f in base]
            target = {1: TARGET_P99_MS, 2: TARGET_MAX_MS}.get(i)
            met = "" if target is None else (" met" if min(vals) <= target else " MISSED")
            out.append(
                Result(
                    SCENARIO,
                    f"/healthz {label}, {state}, {servers:,} servers, full sync every 2 s",
                    min(vals),
                    "ms",
                    baseline=min(bvals),
                    baseline_name=f"{baseline:,} servers, {state}",
                    note=(
                        f"min of {repeats}; median {statistics.median(vals):.1f} ms "
                        f"(baseline median {statistics.median(bvals):.1f})"
                        + (f"; target <= {target:.0f} ms:{met}" if target else "")
                        + f"; load average at start {loadavg:.2f}"
                        + (load if i == 0 else "")
                    ),
                )
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", type=int, default=BASELINE)
    parser.add_argument("--create-rate", type=float, default=10.0)
    parser.add_argument("--readers", type=int, default=20)
    parser.add_argument("--read-rate", type=float, default=40.0)
    parser.add_argument(
        "--in-step",
        action="store_true",
        help="the load's clients start together, not each at a random moment of its"
        " interval: the 20 readers then send their pages in the same instant, every interval",
    )
    parser.add_argument(
        "--trace-stalls",
        metavar="FILE",
        help="diagnostic: each child writes the stacks holding its loop to FILE.PID.0 (idle)"
        " and FILE.PID (under load) (bench/stall_trace.py)",
    )
    parser.add_argument(
        "--trace-steps",
        metavar="FILE",
        help="diagnostic: each child writes its loop's steps over 3 ms (wall/CPU, where"
        " each resumed and stopped) and the collector's pauses to FILE.PID"
        " (bench/loop_steps.py); the children then run on the standard library's loop",
    )
    args = parser.parse_args()
    if args.trace_stalls:
        os.environ[TRACE_ENV] = args.trace_stalls
    if args.trace_steps:
        os.environ[STEPS_ENV] = args.trace_steps
    quiet_logs()
    print_machine(machine(None))
    spec = LoadSpec(
        servers=0,
        state_file="",
        create_rate=args.create_rate,
        readers=args.readers,
        read_rate=args.read_rate,
        in_step=args.in_step,
    )
    print(table(run(args.servers, args.seconds, args.repeats, args.baseline, spec=spec)))


if __name__ == "__main__":
    main()
