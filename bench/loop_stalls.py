"""Loop stalls: `/healthz` latency of a `canopy up` whose controllers sync a big cloud.

A `canopy up` (API and controllers in one process, `cli.serve.serve`, SQLite) runs in a
child process with N steady servers on one sim cloud (seeded directly, the sim's state
file too, so every row is found unchanged), each with its claim, and a few reservation
leases holding claims that start later, as a real fleet has. Sync runs a full listing on every pass
(`full_sync_every = 1`, every `sync_seconds` = 2 s), the heaviest thing a controller does
at rest. From this process, a probe asks `/healthz` every 20 ms for `--seconds` and
records each answer's latency: a stall of the child's event loop shows as a slow answer.

Baseline in the same run: the same with 1,000 servers. Figures: p50, p99 and max, best
and median over `--repeats` (the machine is shared: each repeat is a fresh child).

Run alone: .venv/bin/python -m bench.loop_stalls [--servers 100000] [--seconds 12] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
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
from bench.seed import seed_claims, seed_servers, seed_sim
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


async def prepare(data_dir: Path, n: int) -> None:
    """The database and the sim's state file, holding `n` steady servers on `sim`."""
    settings = _settings(data_dir, 0)
    clock = SystemClock()
    db = await open_database(settings)
    drivers = build_drivers(settings, clock)
    try:
        await seed(db, settings, clock)
        project = await ensure_project(db, clock, "bench")
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
    """The child: `canopy up` as the CLI runs it."""
    from canopy.cli.serve import serve

    quiet_logs()
    asyncio.run(serve(_settings(Path(data_dir), port), api=True, worker=True, banner=False))


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


def one_run(n: int, seconds: float, settle: float = 3.0) -> tuple[float, float, float]:
    """(p50, p99, max) of /healthz in ms with `n` servers."""
    tmp = Path(tempfile.mkdtemp(prefix="canopy-bench-stalls-"))
    child = None
    try:
        asyncio.run(prepare(tmp, n))
        port = _free_port()
        child = multiprocessing.get_context("spawn").Process(target=_serve, args=(str(tmp), port))
        child.start()
        _wait_up(port)
        time.sleep(settle)  # the first full sync (a pass over every row) is start-up
        lat = probe(port, seconds)
        return pct(lat, 0.5), pct(lat, 0.99), max(lat)
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
) -> list[Result]:
    figures: dict[int, list[tuple[float, float, float]]] = {}
    for _ in range(repeats):
        for n in (baseline, servers):
            figures.setdefault(n, []).append(one_run(n, seconds, settle))
            print(f"   {n:>7} servers: p50/p99/max {figures[n][-1]}", flush=True)
    out = []
    base = figures[baseline]
    for i, label in enumerate(("p50", "p99", "max")):
        vals = [f[i] for f in figures[servers]]
        bvals = [f[i] for f in base]
        target = {1: TARGET_P99_MS, 2: TARGET_MAX_MS}.get(i)
        met = "" if target is None else (" met" if min(vals) <= target else " MISSED")
        out.append(
            Result(
                SCENARIO,
                f"/healthz {label}, {servers:,} servers, full sync every 2 s",
                min(vals),
                "ms",
                baseline=min(bvals),
                baseline_name=f"{baseline:,} servers",
                note=(
                    f"min of {repeats}; median {statistics.median(vals):.1f} ms "
                    f"(baseline median {statistics.median(bvals):.1f})"
                    + (f"; target <= {target:.0f} ms:{met}" if target else "")
                ),
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    quiet_logs()
    print_machine(machine(None))
    print(table(run(args.servers, args.seconds, args.repeats)))


if __name__ == "__main__":
    main()
