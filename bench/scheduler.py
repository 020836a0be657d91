"""Scheduler with claims: decisions per second through the real placement path.

`PlacementController.run_once()` places one batch of servers in one transaction: it locks
the cloud rows, builds the snapshots, runs the pure scheduler per server and writes the
placement, the claim, the cloud's counters and an instance-action event for each. This
scenario times only those passes, over `--servers` servers waiting in phase `schedule`,
for 5, 50 and 500 sim clouds, on SQLite (a file in a temp dir) and on PostgreSQL, with the
default batch of 64 and with a batch of 1 (what batching buys).

Baseline, same run: the pure `schedule` + `apply_claim` over the same snapshots and the same
requests in the same order (no database): what placement would cost if the database were
free.

Each case starts from a copy of one prepared database (SQLite: a file copy; PostgreSQL:
`CREATE DATABASE ... TEMPLATE`), so every repetition places the same servers onto the same
clouds. Median and min of `--repeats` (the machine is shared and noisy), wall time (the
database's own CPU counts too: on SQLite it is in this process, on PostgreSQL in the
server's); the baseline is the median of its own repetitions, in CPU time. A batch of 1
places only the first `--batch1-servers` servers, and at most 10,000 / clouds (20 at 500
clouds, where each pass builds 500 snapshots): it is slow, and its rate does not depend on
how many.

Run alone: .venv/bin/python -m bench.scheduler [--servers 1000] [--repeats 3]
           [--clouds 5 50 500] [--backends sqlite postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import math
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

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
    table,
)
from canopy.bootstrap import ensure_project, open_database, seed
from canopy.config import SchedulerSettings, Settings, load_settings
from canopy.controllers.inventory import InventoryController
from canopy.controllers.placement import PlacementController, _request, _snapshots
from canopy.controllers.runtime import Runtime
from canopy.domain.clock import SystemClock
from canopy.domain.context import RequestContext
from canopy.domain.placement import CloudSnapshot, PlacementRequest
from canopy.domain.states import Phase
from canopy.providers.registry import build_drivers
from canopy.scheduler import apply_claim, schedule
from canopy.services.servers import CreateServer, ServerService
from canopy.store.db import Database
from canopy.store.models import Claim, Cloud, Flavor, Server

SCENARIO = "scheduler"
UNLIMITED = {"instances": -1, "cores": -1, "ram": -1}
FLAVORS = ("m1.small", "m1.medium")  # 1 vcpu / 2 GB and 2 vcpus / 4 GB, alternating
CHUNK = 100  # servers per create request; requests alternate flavors
PRIVATE_VCPUS = 1200  # the whole private tier: it fills to 80 %, then placement bursts
BATCH1_CAP = 10_000  # a batch of 1 places at most this / clouds servers
TARGET = 500.0  # decisions/s, SQLite, 50 clouds (the target)


def clouds_config(n: int) -> list[dict[str, Any]]:
    """A fifth of the clouds private (tier 0, bounded, free), the rest tiers 1 and 2, priced."""
    n_private = max(1, n // 5)
    hosts_private = math.ceil(PRIVATE_VCPUS / n_private / 16)
    out: list[dict[str, Any]] = []
    for i in range(n):
        private = i < n_private
        sim: dict[str, Any] = (
            {"hosts": hosts_private, "host_vcpus": 16, "host_ram_mb": 65536}
            if private
            else {
                "hosts": 1000,
                "host_vcpus": 64,
                "host_ram_mb": 262144,
                "price_per_vcpu_hour": round(0.048 * (1 + i / 100), 6),
            }
        )
        out.append(
            {
                "name": f"cloud-{i:02d}",
                "driver": "sim",
                "tier": 0 if private else 1 + i % 2,
                "sim": sim,
            }
        )
    return out


def make_settings(n: int, url: str, data_dir: Path, batch: int = 64) -> Settings:
    return load_settings(
        None,
        env={},
        overrides={
            "data_dir": str(data_dir),
            "database": {"url": url},
            "clouds": clouds_config(n),
            # Enough spend headroom that the cap never refuses: this measures placement.
            "scheduler": {"max_spend_per_hour": 1e9},
            "controllers": {"batch_size": batch},
        },
    )


async def prepare(settings: Settings, servers: int) -> None:
    """Migrate, seed the clouds, and create `servers` servers waiting for placement."""
    db = await open_database(settings)
    clock = SystemClock()
    try:
        await seed(db, settings, clock)
        # Capacity and flavor mappings, read from the clouds as a worker does at start.
        drivers = build_drivers(settings, clock)
        try:
            rt = Runtime(db=db, settings=settings, drivers=drivers, clock=clock, worker_id="b")
            await read_inventory(InventoryController(rt), sorted(drivers))
        finally:
            for d in drivers.values():
                await d.close()
        project = await ensure_project(db, clock, "bench", quotas=UNLIMITED)
        ctx = RequestContext(project_id=project, user_id="bench")
        service = ServerService(db, settings, clock)
        made = 0
        i = 0
        while made < servers:
            k = min(CHUNK, servers - made)
            req = CreateServer(
                name=f"vm{i}", flavor=FLAVORS[i % 2], image="cirros", min_count=k, max_count=k
            )
            made += len(await service.create(ctx, req))
            i += 1
    finally:
        await db.dispose()  # on SQLite this checkpoints the WAL into the file


async def read_inventory(controller: InventoryController, clouds: list[str]) -> None:
    """Every cloud's inventory, as a worker reads it at start (its transactions take turns
    on the runtime's database slots, so 500 clouds fit the pool)."""
    read = await controller.run_once(force=True)
    if read != len(clouds):
        raise RuntimeError(f"inventory read for {read} of {len(clouds)} clouds")


async def inputs(url: str) -> tuple[dict[str, CloudSnapshot], list[PlacementRequest]]:
    """The snapshots and the requests, in placement order, exactly as run_once builds them."""
    db = Database(url)
    try:
        async with db.read() as s:
            now = SystemClock().now()
            clouds = {
                c.name: c for c in (await s.execute(select(Cloud).order_by(Cloud.name))).scalars()
            }
            snaps = await _snapshots(s, clouds, now)
            flavors = {f.id: f for f in (await s.execute(select(Flavor))).scalars()}
            rows = (
                await s.execute(
                    select(Server)
                    .where(Server.phase == Phase.SCHEDULE)
                    .order_by(Server.created_at, Server.id)
                )
            ).scalars()
            reqs = [_request(sv, flavors[sv.flavor_id], {}) for sv in rows]
        return snaps, reqs
    finally:
        await db.dispose()


def pure_rate(
    snaps: dict[str, CloudSnapshot],
    reqs: list[PlacementRequest],
    settings: SchedulerSettings,
    repeats: int,
) -> list[float]:
    """Decisions/s for the pure scheduler with claims, as run_once's loop calls it, once
    per repetition.

    CPU time, not wall time: this is single-threaded pure Python, so on a shared machine
    the CPU time is the figure and the time spent descheduled is noise.
    """
    rates = []
    for _ in range(repeats):
        fresh = copy.deepcopy(snaps)
        start = cpu_seconds()
        for req in reqs:
            d = schedule(list(fresh.values()), req, settings)
            if d.cloud is not None:
                apply_claim(fresh[d.cloud], req)
        rates.append(len(reqs) / (cpu_seconds() - start))
    return rates


@dataclass(frozen=True, slots=True)
class Pass:
    wall: float
    cpu: float
    passes: int
    placed: int
    tiers: dict[int, int]  # servers placed per tier


async def place_all(settings: Settings, expect: int, limit: int | None = None) -> Pass:
    """Run placement passes until nothing is left (or `limit` servers are placed)."""
    db = Database(settings.database_url, pool_size=settings.database.pool_size)
    try:
        rt = Runtime(db=db, settings=settings, drivers={}, clock=SystemClock(), worker_id="b")
        controller = PlacementController(rt)
        async with db.read() as s:  # open the connection before the clock starts
            await s.execute(text("SELECT 1"))
        placed = passes = 0
        c0, t0 = cpu_seconds(), time.perf_counter()
        while limit is None or placed < limit:
            n = await controller.run_once()
            if n == 0:
                break
            placed += n
            passes += 1
        wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
        # Not a test, but a figure for a run that placed nothing would be meaningless.
        async with db.read() as s:
            claims = (await s.execute(select(func.count()).select_from(Claim))).scalar_one()
            summed = (await s.execute(select(func.sum(Cloud.instances_claimed)))).scalar_one()
            per_tier = await s.execute(
                select(Cloud.tier, func.count(Claim.id))
                .join(Claim, Claim.cloud == Cloud.name)
                .group_by(Cloud.tier)
                .order_by(Cloud.tier)
            )
            tiers = {int(t): int(k) for t, k in per_tier}
        if claims != placed or summed != placed or (limit is None and placed != expect):
            raise RuntimeError(f"placed {placed}, claims {claims}, counters {summed}")
        return Pass(wall, cpu, passes, placed, tiers)
    finally:
        await db.dispose()


@dataclass(frozen=True, slots=True)
class Case:
    backend: str
    clouds: int
    batch: int


async def run(
    *,
    servers: int = 1000,
    repeats: int = 3,
    clouds: tuple[int, ...] = (5, 50, 500),
    backends: tuple[str, ...] = ("sqlite", "postgres"),
    batches: tuple[int, ...] = (64, 1),
    batch1_servers: int = 200,
    verbose: bool = True,
) -> list[Result]:
    """Every case, median and min of `repeats`; a batch of 1 places only `batch1_servers`
    (it is slow)."""
    results: list[Result] = []
    pg = await pg_version() if "postgres" in backends else None
    tmp = Path(tempfile.mkdtemp(prefix="canopy-bench-sched-"))
    templates: dict[tuple[str, int], str] = {}  # (backend, clouds) -> file path or db name
    try:
        for backend in backends:
            if backend == "postgres" and pg is None:
                if verbose:
                    print("PostgreSQL not reachable: its cases are skipped")
                continue
            for n in clouds:
                if backend == "sqlite":
                    tpl = tmp / f"template-{n}.db"
                    await prepare(make_settings(n, f"sqlite+aiosqlite:///{tpl}", tmp), servers)
                    templates[(backend, n)] = str(tpl)
                    url = f"sqlite+aiosqlite:///{tpl}"
                else:
                    name = scratch_name(f"tpl{n}")
                    url = await pg_create(name)
                    templates[(backend, n)] = name
                    await prepare(make_settings(n, url, tmp), servers)
                snaps, reqs = await inputs(url)
                sched = make_settings(n, url, tmp).scheduler
                pures = pure_rate(snaps, reqs, sched, max(repeats, 5))
                pure = statistics.median(pures)
                for batch in batches:
                    limit = None if batch > 1 else min(batch1_servers, servers, BATCH1_CAP // n)
                    passes: list[Pass] = []
                    for rep in range(repeats):
                        p = await _one(
                            backend, templates[(backend, n)], tmp, n, batch, rep, servers, limit
                        )
                        p_rate = p.placed / p.wall
                        passes.append(p)
                        if verbose:
                            print(
                                f"  {backend:8} {n:>2} clouds batch {batch:>2} rep {rep}: "
                                f"{p.placed} in {p.wall:.2f}s = {p_rate:,.0f}/s "
                                f"(cpu {p.cpu:.2f}s, {p.passes} passes; per tier {p.tiers})"
                            )
                    rates = [p.placed / p.wall for p in passes]
                    rate = statistics.median(rates)
                    cpu_us = statistics.median(p.cpu / p.placed * 1e6 for p in passes)
                    note = (
                        f"median of {len(rates)} (min {min(rates):,.0f}/s); pure scheduler "
                        f"min {min(pures):,.0f}/s; {cpu_us:,.0f} us CPU/decision in this "
                        f"process (= {1e6 / cpu_us:,.0f} per CPU-second)"
                    )
                    if backend == "sqlite" and n == 50 and batch == 64:
                        met = "met" if rate >= TARGET else "NOT met"
                        note += f"; target >= {TARGET:.0f}/s (median) {met}"
                    results.append(
                        Result(
                            SCENARIO,
                            f"{backend}, {n} clouds, batch {batch}",
                            rate,
                            "decisions/s",
                            baseline=pure,
                            baseline_name="pure scheduler",
                            note=note,
                        )
                    )
    finally:
        for (backend, _), name in templates.items():
            if backend == "postgres":
                await pg_drop(name)
        shutil.rmtree(tmp, ignore_errors=True)
    return results


async def _one(
    backend: str,
    template: str,
    tmp: Path,
    n: int,
    batch: int,
    rep: int,
    expect: int,
    limit: int | None,
) -> Pass:
    """One timed repetition on a fresh copy of the prepared database."""
    if backend == "sqlite":
        target = tmp / f"run-{n}-{batch}-{rep}.db"
        shutil.copy(template, target)
        try:
            settings = make_settings(n, f"sqlite+aiosqlite:///{target}", tmp, batch)
            return await place_all(settings, expect, limit)
        finally:
            _remove_sqlite(target)
    name = scratch_name(f"run{n}b{batch}")
    url = await pg_create(name, template=template)
    try:
        return await place_all(make_settings(n, url, tmp, batch), expect, limit)
    finally:
        await pg_drop(name)


def _remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clouds", type=int, nargs="+", default=[5, 50, 500])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 1])
    parser.add_argument(
        "--batch1-servers", type=int, default=200, help="servers placed with a batch of 1"
    )
    args = parser.parse_args()
    quiet_logs()
    print_machine(machine(asyncio.run(pg_version())))
    results = asyncio.run(
        run(
            servers=args.servers,
            repeats=args.repeats,
            clouds=tuple(args.clouds),
            backends=tuple(args.backends),
            batches=tuple(args.batches),
            batch1_servers=args.batch1_servers,
        )
    )
    print()
    print(table(results))


if __name__ == "__main__":
    main()
