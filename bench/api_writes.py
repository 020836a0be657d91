"""API writes under load: creates per second through HTTP, in an empty project and in one
holding 100,000 servers, with the controllers running.

`canopy up` (API and controllers in one process, `cli.serve.serve`, every controller
setting at its default) runs in a child process with one sim cloud, on SQLite and on
PostgreSQL (`--backends`). The project is seeded as the read benchmarks seed it
(bench/reads_setup.py over bench/seed.py: steady servers, the sim's state file holding
them too, so sync finds every row as it is); its quotas are large but finite, so every
create checks usage and none is refused for quota. From this process, 50 httpx async
clients, each on its own keep-alive connection, send `POST /compute/v2.1/servers` one
after another for `--seconds` (bounded: a client starts no create after the deadline, and
the rate is the creates accepted over the time until the last one answered). Meanwhile
the controllers place, boot and sync what is created.

Figures, per backend: accepted creates/s (202), errors (any other answer, or none), p50
and p99 of the create call; min and median over `--repeats`, each repetition a fresh copy
of the prepared database. Baseline in the same run: the empty project. Target: accepted/s
with 100,000 servers >= 0.8 x the empty project's, and 0 errors.

Run alone: .venv/bin/python -m bench.api_writes [--servers 100000] [--seconds 30]
           [--repeats 3] [--backends sqlite postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    Result,
    machine,
    pg_create,
    pg_drop,
    pg_version,
    print_machine,
    quiet_logs,
    scratch_name,
    table,
)
from bench.http_load import cpu_of, free_port, pct, served
from bench.reads_setup import prepare, settings_for
from canopy.bootstrap import ensure_project
from canopy.domain.clock import SystemClock

SCENARIO = "api_writes"
CLIENTS = 50
TARGET = 0.8  # accepted/s at 100,000 >= 0.8 x the empty project's
LIMITS = {"instances": 10_000_000, "cores": 10_000_000, "ram": 2_000_000_000}  # int32
CREATE = "/compute/v2.1/servers"
BODY = {"server": {"name": "web", "imageRef": "cirros", "flavorRef": "1"}}  # m1.tiny


def _extra(url: str | None) -> dict[str, Any]:
    """The settings beside reads_setup's: the database, when not the data dir's SQLite."""
    return {"database": {"url": url}} if url else {}


def _serve(data_dir: str, port: int, url: str | None) -> None:
    """The child: `canopy up` as the CLI runs it (API and controllers)."""
    from canopy import event_loop
    from canopy.cli.serve import serve

    quiet_logs()
    settings = settings_for(Path(data_dir), port, 1, **_extra(url))
    event_loop.run(serve(settings, api=True, worker=True, banner=False), settings.event_loop)


@dataclass
class Template:
    """A prepared database (and the sim's state file) that each repetition copies."""

    data_dir: Path
    token: str
    pg_name: str | None = None  # the PostgreSQL template database, on PostgreSQL


async def make_template(backend: str, n: int, root: Path) -> Template:
    """`n` seeded servers in project `bench` (large quotas), on `backend`."""
    data_dir = root / f"template-{backend}-{n}"
    data_dir.mkdir(mode=0o700)
    pg_name = url = None
    if backend == "postgres":
        pg_name = scratch_name(f"wtpl{n}")
        url = await pg_create(pg_name)
    try:
        prepared, _settings, db = await prepare(n, 1, data_dir, sims=True, **_extra(url))
        try:
            await ensure_project(db, SystemClock(), "bench", quotas=LIMITS)
        finally:
            await db.dispose()  # on SQLite this checkpoints the WAL into the file
    except BaseException:
        if pg_name is not None:
            await pg_drop(pg_name)
        raise
    return Template(data_dir, prepared.token, pg_name)


@dataclass
class Load:
    accepted: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)  # ms, every create answered
    seconds: float = 0.0
    server_cpu: float = 0.0
    first_error: str = ""

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0


async def creates(port: int, token: str, clients: int, seconds: float) -> Load:
    """`clients` httpx clients creating servers, one at a time each, until the deadline."""
    out = Load()
    base = f"http://127.0.0.1:{port}"
    headers = {"X-Auth-Token": token}
    one = httpx.Limits(max_connections=1, max_keepalive_connections=1)

    async def client(c: httpx.AsyncClient) -> None:
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            try:
                r = await c.post(CREATE, json=BODY)
            except httpx.HTTPError as e:
                out.errors += 1
                out.first_error = out.first_error or f"{type(e).__name__}: {e}"
                continue
            out.latencies.append((time.perf_counter() - t0) * 1000)
            if r.status_code == 202:
                out.accepted += 1
            else:
                out.errors += 1
                out.first_error = out.first_error or f"{r.status_code}: {r.text[:200]}"

    pool = [
        httpx.AsyncClient(base_url=base, headers=headers, limits=one, timeout=60)
        for _ in range(clients)
    ]
    try:
        # Warm: one create primes the path, then every client opens its connection.
        r = await pool[0].post(CREATE, json=BODY)
        if r.status_code != 202:
            raise RuntimeError(f"the warm-up create answered {r.status_code}: {r.text[:300]}")
        await asyncio.gather(*(c.get("/healthz") for c in pool))
        end = time.perf_counter() + seconds
        t0 = time.perf_counter()
        await asyncio.gather(*(client(c) for c in pool))
        out.seconds = time.perf_counter() - t0
    finally:
        for c in pool:
            await c.aclose()
    return out


async def _copy(template: Template, root: Path, tag: str) -> tuple[Path, str | None]:
    """A fresh copy of `template`: (its data dir, its PostgreSQL URL or None)."""
    data_dir = root / f"run-{tag}"
    shutil.copytree(template.data_dir, data_dir)
    if template.pg_name is None:
        return data_dir, None
    name = scratch_name(f"wrun{tag}")
    return data_dir, await pg_create(name, template=template.pg_name)


def one_run(
    template: Template, root: Path, tag: str, seconds: float, settle: float, clients: int
) -> Load:
    """One repetition on a fresh copy of `template`, `canopy up` in a child process."""
    data_dir, url = asyncio.run(_copy(template, root, tag))
    try:
        port = free_port()
        # `settle`: the controllers' first passes are start-up.
        with served(_serve, (str(data_dir), port, url), port, settle) as child:
            pid = child.pid
            assert pid is not None
            c0 = cpu_of(pid)
            load = asyncio.run(creates(port, template.token, clients, seconds))
            load.server_cpu = cpu_of(pid) - c0
            return load
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
        if url is not None:
            asyncio.run(pg_drop(url.rsplit("/", 1)[1]))


def _summary(loads: list[Load]) -> str:
    rates = [x.rate for x in loads]
    p50 = statistics.median(pct(x.latencies, 0.5) for x in loads)
    p99 = statistics.median(pct(x.latencies, 0.99) for x in loads)
    return f"min {min(rates):.1f}/s, p50 {p50:.0f} ms, p99 {p99:.0f} ms"


def run(
    servers: int = 100_000,
    seconds: float = 30.0,
    repeats: int = 3,
    backends: tuple[str, ...] = ("sqlite", "postgres"),
    settle: float = 5.0,
    clients: int = CLIENTS,
) -> list[Result]:
    """Each backend: `repeats` runs of `clients` clients for `seconds`, in the empty project
    and in one of `servers` servers (the smoke run uses fewer clients: it only checks the
    path runs, and the answers queued behind 50 clients would lengthen it)."""
    results: list[Result] = []
    pg = asyncio.run(pg_version()) if "postgres" in backends else None
    for backend in backends:
        if backend == "postgres" and pg is None:
            print("   PostgreSQL not reachable: its cases are skipped", flush=True)
            continue
        root = Path(tempfile.mkdtemp(prefix="canopy-bench-writes-"))
        templates: dict[int, Template] = {}
        try:
            for n in (0, servers):
                templates[n] = asyncio.run(make_template(backend, n, root))
            loads: dict[int, list[Load]] = {0: [], servers: []}
            for rep in range(repeats):
                for n in (0, servers):
                    x = one_run(templates[n], root, f"{n}-{rep}", seconds, settle, clients)
                    loads[n].append(x)
                    print(
                        f"   {backend:8} {n:>7} servers, rep {rep}: {x.rate:.1f} creates/s "
                        f"(p50 {pct(x.latencies, 0.5):.0f} ms, p99 {pct(x.latencies, 0.99):.0f}"
                        f" ms), {x.errors} errors, server CPU {x.server_cpu:.1f} s"
                        + (f"; first error {x.first_error}" if x.first_error else ""),
                        flush=True,
                    )
            results.append(_result(backend, servers, seconds, clients, loads[servers], loads[0]))
        finally:
            for t in templates.values():
                if t.pg_name is not None:
                    asyncio.run(pg_drop(t.pg_name))
            shutil.rmtree(root, ignore_errors=True)
    return results


def _result(
    backend: str, servers: int, seconds: float, clients: int, full: list[Load], empty: list[Load]
) -> Result:
    median, base = (statistics.median(x.rate for x in xs) for xs in (full, empty))
    errors = sum(x.errors for x in full + empty)
    met = "met" if base and median / base >= TARGET and errors == 0 else "MISSED"
    return Result(
        SCENARIO,
        f"{backend}, {clients} clients creating over HTTP, {servers:,} servers, controllers on",
        median,
        "creates/s",
        baseline=base,
        baseline_name="empty project",
        note=(
            f"median of {len(full)} x {seconds:g} s; {_summary(full)}; empty project: "
            f"{_summary(empty)}; {errors} errors; target >= {TARGET}x and 0 errors: {met}"
        ),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--settle", type=float, default=5.0, help="seconds after start-up")
    args = parser.parse_args()
    quiet_logs()
    print_machine(machine(asyncio.run(pg_version())))
    results = run(args.servers, args.seconds, args.repeats, tuple(args.backends), args.settle)
    print(table(results))


if __name__ == "__main__":
    main()
