"""Memory: the RSS of `canopy up` holding N servers, with its controllers running.

A `canopy up` (API and controllers in one process, `cli.serve.serve`, SQLite, the sim
cloud inside it) runs in a child process with N steady servers on one sim cloud, seeded
as for the loop-stalls benchmark (bench/loop_stalls.py). Sync runs every second and lists
everything every 4th pass, so the sampling window covers full sync cycles (full listings
included: the heaviest thing the controllers hold). From this process the child's RSS is
sampled every 50 ms for `--seconds` after it answers `/healthz` (asked again every second,
so the API answers meanwhile).

Figures: the peak RSS over the window and the RSS at its end, best and median over
`--repeats`. Baseline in the same run: the same with 1,000 servers. Target: the peak with
100,000 servers at most 300 MB.

Run alone: .venv/bin/python -m bench.memory [--servers 100000] [--seconds 15] [--repeats 2]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import shutil
import signal
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from bench.common import Result, machine, print_machine, quiet_logs, table
from bench.loop_stalls import _free_port, _wait_up, prepare
from canopy.config import Settings, load_settings

SCENARIO = "memory"
BASELINE = 1000
TARGET_MB = 300.0
SAMPLE_EVERY = 0.05
MB = 1024 * 1024


def _settings(data_dir: Path, port: int) -> Settings:
    overrides: dict[str, Any] = {
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
        "controllers": {"sync_seconds": 1.0, "full_sync_every": 4},
    }
    return load_settings(None, env={}, overrides=overrides)


def _serve(data_dir: str, port: int) -> None:
    """The child: `canopy up` as the CLI runs it."""
    from canopy import event_loop
    from canopy.cli.serve import serve

    quiet_logs()
    settings = _settings(Path(data_dir), port)
    event_loop.run(serve(settings, api=True, worker=True, banner=False), settings.event_loop)


def sample(pid: int, port: int, seconds: float) -> tuple[float, float]:
    """(peak, last) RSS of `pid` in MB over `seconds`."""
    import http.client

    proc = psutil.Process(pid)
    peak = last = 0.0
    end = time.perf_counter() + seconds
    next_page = 0.0
    while time.perf_counter() < end:
        last = proc.memory_info().rss / MB
        peak = max(peak, last)
        if time.perf_counter() >= next_page:  # the API answers meanwhile
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            conn.close()
            next_page = time.perf_counter() + 1.0
        time.sleep(SAMPLE_EVERY)
    return peak, last


def one_run(n: int, seconds: float) -> tuple[float, float]:
    """(peak, end) RSS in MB of `canopy up` with `n` servers."""
    tmp = Path(tempfile.mkdtemp(prefix="canopy-bench-memory-"))
    child = None
    try:
        asyncio.run(prepare(tmp, n))
        port = _free_port()
        child = multiprocessing.get_context("spawn").Process(target=_serve, args=(str(tmp), port))
        child.start()
        _wait_up(port)
        assert child.pid is not None
        return sample(child.pid, port, seconds)
    finally:
        if child is not None and child.pid is not None:
            os.kill(child.pid, signal.SIGTERM)
            child.join(30)
            if child.is_alive():
                child.kill()
                child.join()
        shutil.rmtree(tmp, ignore_errors=True)


def run(
    servers: int = 100_000, seconds: float = 15.0, repeats: int = 2, baseline: int = BASELINE
) -> list[Result]:
    figures: dict[int, list[tuple[float, float]]] = {}
    for _ in range(repeats):
        for n in (baseline, servers):
            figures.setdefault(n, []).append(one_run(n, seconds))
            peak, end = figures[n][-1]
            print(f"   {n:>7} servers: peak {peak:.0f} MB, at the end {end:.0f} MB", flush=True)
    out = []
    for i, label in enumerate(("peak", "end of window")):
        vals = [f[i] for f in figures[servers]]
        bvals = [f[i] for f in figures[baseline]]
        met = " met" if min(vals) <= TARGET_MB else " MISSED"
        out.append(
            Result(
                SCENARIO,
                f"RSS {label}, canopy up, {servers:,} servers, controllers running",
                min(vals),
                "MB",
                baseline=min(bvals),
                baseline_name=f"{baseline:,} servers",
                note=(
                    f"min of {repeats} over {seconds:.0f} s; median {statistics.median(vals):.0f}"
                    f" MB (baseline median {statistics.median(bvals):.0f})"
                    + (f"; target <= {TARGET_MB:.0f} MB:{met}" if i == 0 else "")
                ),
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    quiet_logs()
    print_machine(machine(None))
    print(table(run(args.servers, args.seconds, args.repeats)))


if __name__ == "__main__":
    main()
