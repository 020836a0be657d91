"""API writes: creates per second in an empty project and in one holding 100,000 servers.

50 concurrent clients each create one server at a time for `--seconds`, through the
service layer the API's POST /servers calls (`ServerService.create`: validation, the
quota check, the insert), on SQLite, with no controller running (so nothing else writes).
The project's quota is large but finite, so usage is checked on every create. The full
project is seeded directly (bench/seed.py); the empty one is the baseline, in the same
run. Figure: accepted creates/s (min and median over `--repeats`); any error is counted
and reported.

Run alone: .venv/bin/python -m bench.api_writes [--servers 100000] [--seconds 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import Result, machine, print_machine, quiet_logs, table
from bench.seed import seed_servers
from canopy.bootstrap import ensure_project, open_database, seed
from canopy.config import load_settings
from canopy.domain.clock import SystemClock
from canopy.domain.context import RequestContext
from canopy.services.servers import CreateServer, ServerService

SCENARIO = "api_writes"
CLIENTS = 50
TARGET = 0.8  # accepted/s at 100,000 >= 0.8 x the empty project's
LIMITS = {"instances": 10_000_000, "cores": 10_000_000, "ram": 10**12}


async def one_run(n: int, seconds: float) -> tuple[float, int]:
    """(accepted creates/s, errors) with `n` servers already in the project."""
    tmp = Path(tempfile.mkdtemp(prefix="canopy-bench-writes-"))
    settings = load_settings(None, env={}, overrides={"data_dir": str(tmp)})
    clock = SystemClock()
    db = await open_database(settings)
    try:
        await seed(db, settings, clock)
        project = await ensure_project(db, clock, "bench", quotas=LIMITS)
        when = datetime.now(UTC) - timedelta(hours=1)
        if n:
            await seed_servers(db, project=project, cloud="private", n=n, flavor="1", when=when)
        service = ServerService(db, settings, clock)
        ctx = RequestContext(project_id=project, user_id="bench", roles=frozenset({"member"}))
        req = CreateServer(name="web", flavor="m1.tiny", image="cirros")
        accepted = errors = 0
        end = time.perf_counter() + seconds

        async def client() -> None:
            nonlocal accepted, errors
            while time.perf_counter() < end:
                try:
                    await service.create(ctx, req)
                    accepted += 1
                except Exception:
                    errors += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(CLIENTS)))
        return accepted / (time.perf_counter() - t0), errors
    finally:
        await db.dispose()
        shutil.rmtree(tmp, ignore_errors=True)


async def run(servers: int = 100_000, seconds: float = 10.0, repeats: int = 3) -> list[Result]:
    rates: dict[int, list[float]] = {0: [], servers: []}
    errors = 0
    for _ in range(repeats):
        for n in (0, servers):
            rate, err = await one_run(n, seconds)
            rates[n].append(rate)
            errors += err
            print(
                f"   {n:>7} servers in the project: {rate:.1f} creates/s, {err} errors", flush=True
            )
    full, empty = rates[servers], rates[0]
    ratio = statistics.median(full) / statistics.median(empty)
    met = "met" if ratio >= TARGET and errors == 0 else "MISSED"
    return [
        Result(
            SCENARIO,
            f"{CLIENTS} clients creating, project with {servers:,} servers",
            statistics.median(full),
            "creates/s",
            baseline=statistics.median(empty),
            baseline_name="empty project",
            note=(
                f"median of {repeats} (min {min(full):.1f}; baseline min {min(empty):.1f}); "
                f"{errors} errors; target >= {TARGET}x: {met}"
            ),
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    quiet_logs()
    print_machine(machine(None))
    print(table(asyncio.run(run(args.servers, args.seconds, args.repeats))))


if __name__ == "__main__":
    main()
