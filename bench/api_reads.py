"""API reads under load: 50 concurrent clients listing pages of 100 servers for N seconds.

The API (canopy's app under uvicorn, configured as `canopy api` runs it, SQLite, no
controllers) runs in a child process over a database of `--servers` steady servers of one
project (bench/seed.py). Each client walks `GET /compute/v2.1/servers/detail?limit=100`
page by page, following the next link's marker, on its own keep-alive connection.

Baseline in the same run, on the same server (same app, middleware, uvicorn, client):
`GET /bench/floor`, a route that returns the same bytes (a real first page, prepared once)
with no query and no rendering: what the HTTP stack alone costs to send a page. Figures:
pages/s (and p50/p99 latency) against the floor's, min and median over `--repeats` (each
repetition a fresh child over a fresh database: the machine is shared and noisy); target
pages/s >= 1/3 of the floor.

Run alone: .venv/bin/python -m bench.api_reads [--servers 100000] [--seconds 30] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from pathlib import Path

import httpx
import uvicorn

from bench.common import Result, machine, print_machine, quiet_logs, table
from bench.http_load import Load, cpu_of, free_port, hammer, next_marker, pct, served
from bench.reads_setup import FLOOR_PATH, PAGE, Prepared, add_floor, prepare, settings_for

SCENARIO = "api_reads"
CLIENTS = 50
TARGET = 1 / 3


def _serve(data_dir: str, port: int, token: str) -> None:
    """The child: canopy's app plus the floor route, under uvicorn as `canopy api` has it."""
    from canopy import event_loop
    from canopy.api.app import create_app
    from canopy.bootstrap import open_existing
    from canopy.cli.serve import HTTP_PARSER
    from canopy.domain.clock import SystemClock
    from canopy.heap import freeze_startup_heap, pace_collector

    quiet_logs()

    async def main() -> None:
        settings = settings_for(Path(data_dir), port, 1)
        db = await open_existing(settings)
        app = create_app(settings=settings, db=db, clock=SystemClock())
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=f"http://127.0.0.1:{port}"
        ) as c:
            page = await c.get(PAGE, headers={"X-Auth-Token": token})
            assert page.status_code == 200, page.text[:300]
        add_floor(app, page.content)
        config = uvicorn.Config(
            app,
            http=HTTP_PARSER,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_keep_alive=75,
        )
        # As `canopy api` starts its server (cli/serve.py): the start-up heap frozen,
        # the youngest generation collected every 50,000 allocations (canopy/heap.py).
        freeze_startup_heap()
        pace_collector()
        await uvicorn.Server(config).serve()

    event_loop.run(main(), settings_for(Path(data_dir), port, 1).event_loop)


def one_run(servers: int, seconds: float) -> tuple[Load, Load]:
    """(pages, floor) under CLIENTS clients for `seconds` each."""
    prepared = asyncio.run(_prepare(servers))
    try:
        port = free_port()
        args = (str(prepared.data_dir), port, prepared.token)
        with served(_serve, args, port) as child:
            headers = {"X-Auth-Token": prepared.token}

            pid = child.pid
            assert pid is not None

            async def both() -> tuple[Load, Load]:
                await hammer(port, headers, CLIENTS, min(2.0, seconds), PAGE, next_marker)  # warm
                c0 = cpu_of(pid)
                pages = await hammer(port, headers, CLIENTS, seconds, PAGE, next_marker)
                c1 = cpu_of(pid)
                floor = await hammer(port, headers, CLIENTS, seconds, FLOOR_PATH, None)
                c2 = cpu_of(pid)
                pages.server_cpu, floor.server_cpu = c1 - c0, c2 - c1
                return pages, floor

            return asyncio.run(both())
    finally:
        prepared.cleanup()


async def _prepare(servers: int) -> Prepared:
    prepared, _settings, db = await prepare(servers)
    await db.dispose()
    return prepared


def run(servers: int = 100_000, seconds: float = 30.0, repeats: int = 3) -> list[Result]:
    runs = []
    for _ in range(repeats):
        pages, floor = one_run(servers, seconds)
        runs.append((pages, floor))
        print(
            f"   pages {pages.rate:.1f}/s (p50 {pct(pages.latencies, 0.5):.0f} ms, p99 "
            f"{pct(pages.latencies, 0.99):.0f} ms, {pages.errors} errors); floor "
            f"{floor.rate:.1f}/s (p99 {pct(floor.latencies, 0.99):.0f} ms); server CPU per "
            f"page {pages.cpu_ms:.2f} ms, per floor page {floor.cpu_ms:.2f} ms",
            flush=True,
        )
    rates = [p.rate for p, _ in runs]
    floors = [f.rate for _, f in runs]
    ratios = [p.rate / f.rate for p, f in runs]
    ratio = statistics.median(ratios)
    p99s = [pct(p.latencies, 0.99) for p, _ in runs]
    p50s = [pct(p.latencies, 0.5) for p, _ in runs]
    errors = sum(p.errors for p, _ in runs)
    met = "met" if ratio >= TARGET and errors == 0 else "MISSED"
    return [
        Result(
            SCENARIO,
            f"{CLIENTS} clients, pages of 100, {servers:,} servers",
            statistics.median(rates),
            "pages/s",
            baseline=statistics.median(floors),
            baseline_name="prepared body, same stack",
            note=(
                f"median of {repeats} x {seconds:g} s (min {min(rates):.1f} pages/s, floor "
                f"min {min(floors):.1f}; ratio median {ratio:.2f}, min {min(ratios):.2f}); "
                f"p50 {statistics.median(p50s):.0f} ms, p99 {statistics.median(p99s):.0f} ms "
                f"(worst {max(p99s):.0f}); {errors} errors; target >= 0.33x: {met}"
            ),
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    quiet_logs()
    print_machine(machine(None))
    print(table(run(args.servers, args.seconds, args.repeats)))


if __name__ == "__main__":
    main()
