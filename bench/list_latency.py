"""List latency: server list pages through real HTTP from a `canopy up` whose controllers
run, with 100,000 servers over 20 clouds and over 1.

`canopy up` (API and controllers in one process, SQLite) runs in a child process over a
database of `--servers` steady servers of one project, spread over 20 sim clouds (or all on
one), the sims' state files seeded to match (so sync runs, and finds every row as it is).
Once every cloud's sync job has run twice (the first pass, over every row, is start-up: 6-9
s at 100,000 servers on a 2-core machine), from this process one keep-alive client asks
each case `--requests` times, in rounds (each case once a round, a round every 0.15 s at
most, so the cases interleave and span many of sync's intervals): the first page of
`servers/detail?limit=100`, page 500 (a marker 49,999 rows in), the last page, a name as
`openstack server show NAME` sends it after its `GET /servers/NAME` 404 (`?name=web0-42`:
unanchored, a regular expression searched anywhere in the name, so `web0-420` matches too),
the anchored `?name=^web0-42$`, a name prefix (`?name=^web0-42`), a status no server has
(`?status=ERROR`: the whole project filtered) and `changes-since` (the newest 100 changed).
Figures: p50 and p99 per case, for 20 clouds and for 1; targets p99 <= 50 ms and p50(20
clouds)/p50(1) <= 1.2.

Baseline in the same run: a stateless fan-out gateway (bench/fanout.py) over 20 sim-like
clouds holding the same number of servers, each call 20 ms, first page, sequential and
concurrent (the sequential one takes 20 x 20 ms a request, so it is asked fewer times).

Run alone: .venv/bin/python -m bench.list_latency [--servers 100000] [--requests 200]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import shutil
import time
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import select

from bench import fanout
from bench.common import Result, machine, print_machine, quiet_logs, table
from bench.http_load import free_port, pct, served
from bench.reads_setup import PAGE, prepare, settings_for, wait_synced
from canopy.store.models import Server

SCENARIO = "list_latency"
TARGET_P99_MS = 50.0
TARGET_RATIO = 1.2
LATENCY = 0.02
FANOUT_CLOUDS = 20
# A round of every case starts this often at most: 200 rounds span 30 s, fifteen of sync's
# 2 s intervals at rest.
ROUND_SECONDS = 0.15


def _serve(data_dir: str, port: int, clouds: int) -> None:
    """The child: `canopy up` as the CLI runs it (API and controllers)."""
    from canopy import event_loop
    from canopy.cli.serve import serve

    quiet_logs()
    settings = settings_for(Path(data_dir), port, clouds)
    event_loop.run(serve(settings, api=True, worker=True, banner=False), settings.event_loop)


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def _prepare(servers: int, clouds: int) -> tuple[Path, str, dict[str, str]]:
    """The data directory, a token, and the path of each case."""
    prepared, _settings, db = await prepare(servers, clouds, sims=True)
    try:
        order = (Server.created_at.desc(), Server.id.desc())

        async def at(offset: int) -> tuple[str, datetime]:
            async with db.read() as s:
                row = (
                    await s.execute(
                        select(Server.id, Server.updated_at).order_by(*order).offset(offset)
                    )
                ).first()
            assert row is not None
            return row[0], row[1]

        deep, _ = await at(min(49_999, servers - 101))
        last, _ = await at(max(0, servers - 101))
        _, newest_100 = await at(min(99, servers - 1))
        cases = {
            "first page": PAGE,
            "page 500": f"{PAGE}&marker={deep}",
            "last page": f"{PAGE}&marker={last}",
            "name exact": f"{PAGE}&name={quote('web0-42')}",  # what the client sends
            "name anchored": f"{PAGE}&name={quote('^web0-42$')}",
            "name prefix": f"{PAGE}&name={quote('^web0-42')}",
            "status": f"{PAGE}&status=ERROR",
            "changes-since": f"{PAGE}&changes-since={quote(_iso(newest_100))}",
        }
        return prepared.data_dir, prepared.token, cases
    finally:
        await db.dispose()


def ask(port: int, path: str, n: int, headers: dict[str, str]) -> list[float]:
    """Latencies (ms) of `n` sequential requests for `path` on one keep-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        out.append((time.perf_counter() - t0) * 1000)
        if resp.status != 200:
            raise RuntimeError(f"{path} answered {resp.status}: {body[:200]!r}")
    conn.close()
    return out


def ask_rounds(
    port: int, paths: dict[str, str], rounds: int, headers: dict[str, str], every: float
) -> dict[str, list[float]]:
    """Latencies (ms) per case: `rounds` rounds asking each case once, a round started
    every `every` seconds at most, on one keep-alive connection. The cases interleave and
    the rounds span many sync intervals, so every case meets the controllers' passes as
    often as the others (back to back, a case's 200 requests took less than one interval)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    out: dict[str, list[float]] = {label: [] for label in paths}
    for _ in range(rounds):
        began = time.perf_counter()
        for label, path in paths.items():
            t0 = time.perf_counter()
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            body = resp.read()
            out[label].append((time.perf_counter() - t0) * 1000)
            if resp.status != 200:
                raise RuntimeError(f"{path} answered {resp.status}: {body[:200]!r}")
        time.sleep(max(0.0, every - (time.perf_counter() - began)))
    conn.close()
    return out


def canopy_run(
    servers: int, clouds: int, requests: int, settle: float
) -> dict[str, tuple[float, float]]:
    """(p50, p99) per case for `servers` over `clouds`, the controllers running."""
    data_dir, token, cases = asyncio.run(_prepare(servers, clouds))
    try:
        port = free_port()
        with served(_serve, (str(data_dir), port, clouds), port):
            # The controllers' first passes (over every row) are start-up: measured at rest
            # after them, `settle` seconds on.
            took = wait_synced(settings_for(data_dir, port, clouds))
            print(f"   {clouds:>2} clouds: start-up passes over in {took:.1f} s", flush=True)
            time.sleep(settle)
            headers = {"X-Auth-Token": token}
            ask_rounds(port, cases, 5, headers, 0.0)  # warm
            lats = ask_rounds(port, cases, requests, headers, ROUND_SECONDS)
            out = {}
            for label, lat in lats.items():
                out[label] = (pct(lat, 0.5), pct(lat, 0.99))
                print(f"   {clouds:>2} clouds, {label}: p50/p99 {out[label]}", flush=True)
            return out
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def fanout_run(servers: int, requests: int, sequential_requests: int) -> dict[str, list[float]]:
    port = free_port()
    with served(fanout.serve, (port, FANOUT_CLOUDS, servers, LATENCY), port):
        out = {}
        for mode, n in (("concurrent", requests), ("sequential", sequential_requests)):
            path = f"/servers/detail?limit=100&mode={mode}"
            ask(port, path, 2, {})
            out[mode] = ask(port, path, n, {})
            print(f"   gateway {mode}: p50 {pct(out[mode], 0.5):.1f} ms", flush=True)
        return out


def run(
    servers: int = 100_000,
    requests: int = 200,
    sequential_requests: int = 25,
    settle: float = 2.0,
) -> list[Result]:
    gw = fanout_run(servers, requests, sequential_requests)
    many = canopy_run(servers, 20, requests, settle)
    one = canopy_run(servers, 1, requests, settle)
    out = []
    for label in many:
        p50_20, p99_20 = many[label]
        p50_1, p99_1 = one[label]
        ratio = p50_20 / p50_1 if p50_1 else float("nan")
        worst = max(p99_20, p99_1)
        p99_met = "met" if worst <= TARGET_P99_MS else "MISSED"
        ratio_met = "met" if ratio <= TARGET_RATIO else "MISSED"
        out.append(
            Result(
                SCENARIO,
                f"{label}, {servers:,} servers over 20 clouds: p50",
                p50_20,
                "ms",
                baseline=p50_1,
                baseline_name="p50 over 1 cloud",
                note=(
                    f"p99 {p99_20:.1f} ms (1 cloud: {p99_1:.1f}); {requests} requests; "
                    f"p99 <= {TARGET_P99_MS:.0f} ms: {p99_met}; "
                    f"ratio <= {TARGET_RATIO}: {ratio_met}"
                ),
            )
        )
    first = many["first page"][0]
    for mode, lat in gw.items():
        out.append(
            Result(
                SCENARIO,
                f"first page, 20 clouds: canopy p50 against a {mode} fan-out gateway",
                first,
                "ms",
                baseline=pct(lat, 0.5),
                baseline_name=f"gateway {mode}, 20 ms calls",
                note=f"gateway p99 {pct(lat, 0.99):.1f} ms over {len(lat)} requests",
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--sequential-requests", type=int, default=25)
    args = parser.parse_args()
    quiet_logs()
    print_machine(machine(None))
    print(table(run(args.servers, args.requests, args.sequential_requests)))


if __name__ == "__main__":
    main()
