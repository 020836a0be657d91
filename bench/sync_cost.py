"""Sync cost: what one sync poll costs with 1% of a big cloud changing between polls.

One sim cloud holds N steady servers (seeded directly, the sim's state file too, so every
row matches its server). Between polls, 1% of the servers change as a real cloud drifts:
half are stopped and half deleted behind canopy's back, written straight into the sim's
state file. Each poll is one `SyncController.sync_cloud` in this process, on SQLite, with a
sim that answers at once (no API latency), so every figure is work, not waiting.

Per poll it counts the driver calls and the servers they listed, the SQL statements, the
rows they read (rows returned to the process) and wrote, and the process's CPU (every
thread: the sim's listing runs in one). The counts come from a counting wrapper round the
driver and a SQLAlchemy `after_cursor_execute` listener in this process; nothing in the
production code counts for the benchmark.

Three paths over the same database, in the same run:

- changes-since: the cloud is polled for what changed since the last poll (the path a
  cloud that reports `changes-since` takes on all but every `full_sync_every`-th pass);
- full, digest: a full listing every poll, compared against sync's digest of unchanged
  servers (controllers/sync_digest.py): a cloud without changes-since (EC2), or the
  periodic full pass, between deep passes;
- baseline: a full re-list every poll, every row compared (`full_sync_every = 1`,
  `sync_deep_every = 1`: sync's deep pass, what every full pass cost before the digest),
  what a sync that re-reads everything pays.

The figure: the changes-since path's cost grows with the changes, not the fleet, so its
CPU per poll at 100,000 is about that at 10,000 (ratio about 1), while the full re-list's
grows tenfold. `sync_overlap_seconds` is 0 here so each poll lists only its own changes.

Run alone: .venv/bin/python -m bench.sync_cost [--sizes 10000 100000] [--polls 5]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import event

from bench.common import Result, machine, print_machine, quiet_logs, table
from bench.loop_stalls import prepare
from bench.seed import drift
from canopy.bootstrap import open_database
from canopy.config import Settings, load_settings
from canopy.config_sections import ControllerSettings
from canopy.controllers.runtime import Runtime
from canopy.controllers.sync import SyncController
from canopy.domain.clock import SystemClock
from canopy.providers.base import Compute
from canopy.providers.registry import build_drivers

SCENARIO = "sync_cost"
CHANGING = 0.01


@dataclass
class Counts:
    """What one poll did."""

    calls: int = 0
    listed: int = 0
    statements: int = 0
    read: int = 0
    written: int = 0
    cpu_ms: float = 0.0
    by_call: dict[str, int] = field(default_factory=dict)


class Counting:
    """A driver seen through a counter: each coroutine method call, and what `list` (or
    each page of `list_page`) returns."""

    def __init__(self, inner: Compute, counts: Callable[[], Counts]) -> None:
        self._inner = inner
        self._counts = counts

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not asyncio.iscoroutinefunction(attr):
            return attr

        async def counted(*args: Any, **kwargs: Any) -> Any:
            c = self._counts()
            c.calls += 1
            c.by_call[name] = c.by_call.get(name, 0) + 1
            out = await attr(*args, **kwargs)
            if name == "list":
                c.listed += len(out)
            elif name == "list_page":  # sync's listing, a page a call
                c.listed += len(out.servers)
            return out

        return counted


def settings_for(data_dir: Path, full_every: int, deep_every: int = 12) -> Settings:
    # No heartbeat renews the job's lease here (a worker's would): long enough for a full
    # pass of 100,000 servers on a loaded machine, so no pass is abandoned.
    controllers: dict[str, Any] = {
        "full_sync_every": full_every,
        "sync_overlap_seconds": 0,
        "lease_seconds": 3600,
    }
    if "sync_deep_every" in ControllerSettings.model_fields:  # absent before the digest
        controllers["sync_deep_every"] = deep_every
    return load_settings(
        None,
        env={},
        overrides={
            "data_dir": str(data_dir),
            "worker": {"metrics": False},
            "clouds": [
                {
                    "name": "sim",
                    "driver": "sim",
                    "tier": 0,
                    "sim": {
                        "hosts": 10,
                        "host_vcpus": 100000,
                        "host_ram_mb": 10**8,
                        "seed": 1,
                        "api_latency_ms": 0,
                    },
                }
            ],
            "controllers": controllers,
        },
    )


async def polls(
    data_dir: Path, k: int, full_every: int, count: int, seed: int, deep_every: int = 10**6
) -> list[Counts]:
    """`count` measured polls (after a warm-up pass), `k` servers drifting before each."""
    settings = settings_for(data_dir, full_every, deep_every)
    clock = SystemClock()
    db = await open_database(settings)
    current = Counts()

    def now_counts() -> Counts:
        return current

    def on_execute(conn: Any, cursor: Any, stmt: Any, params: Any, ctx: Any, many: Any) -> None:
        current.statements += 1
        if ctx is not None and (ctx.isinsert or ctx.isupdate or ctx.isdelete):
            current.written += max(0, cursor.rowcount or 0)
        else:
            current.read += len(getattr(cursor, "_rows", ()) or ())

    event.listen(db.engine.sync_engine, "after_cursor_execute", on_execute)
    drivers: dict[str, Compute] = {
        name: Counting(d, now_counts)  # type: ignore[dict-item]
        for name, d in build_drivers(settings, clock).items()
    }
    rt = Runtime(db=db, settings=settings, drivers=drivers, clock=clock, worker_id="bench")
    sync = SyncController(rt)
    rng = random.Random(seed)
    out: list[Counts] = []
    try:
        await sync.sync_cloud("sim", force=True)  # warm-up: the first pass is a full one
        for _ in range(count):
            drift(data_dir / "sim-sim.db", k, rng)
            current = Counts()
            t0 = time.process_time()
            assert await sync.sync_cloud("sim", force=True)
            current.cpu_ms = (time.process_time() - t0) * 1000
            # A pass that was abandoned (or listed nothing) would measure nothing.
            if current.listed < k // 2:
                raise RuntimeError(f"a poll listed {current.listed} servers, {k} changed")
            out.append(current)
        current = Counts()  # the drivers' close below is not a poll's
    finally:
        for d in drivers.values():
            await d.close()
        await db.dispose()
    return out


def summary(cs: list[Counts]) -> dict[str, float]:
    med = statistics.median
    return {
        "cpu_ms": med(c.cpu_ms for c in cs),
        "cpu_min": min(c.cpu_ms for c in cs),
        "calls": med(c.calls for c in cs),
        "listed": med(c.listed for c in cs),
        "statements": med(c.statements for c in cs),
        "read": med(c.read for c in cs),
        "written": med(c.written for c in cs),
    }


def describe(s: dict[str, float]) -> str:
    return (
        f"{s['calls']:.0f} driver calls listing {s['listed']:,.0f}; {s['statements']:,.0f} "
        f"statements, {s['read']:,.0f} rows read, {s['written']:,.0f} written; "
        f"CPU median {s['cpu_ms']:.0f} ms, min {s['cpu_min']:.0f}"
    )


async def measure(n: int, fixed: int, count: int) -> dict[str, dict[str, float]]:
    """Both paths over one freshly seeded cloud of `n` servers: 1% changing per poll, and
    (changes-since only) `fixed` servers changing per poll, the same count at every size."""
    tmp = Path(tempfile.mkdtemp(prefix="canopy-bench-sync-"))
    k = max(2, int(n * CHANGING))
    try:
        await prepare(tmp, n)
        return {
            "changes-since": summary(await polls(tmp, k, 10**6, count, seed=1)),
            "changes-since, fixed": summary(await polls(tmp, fixed, 10**6, count, seed=3)),
            "full": summary(await polls(tmp, k, 1, count, seed=2, deep_every=1)),
            "full, digest": summary(await polls(tmp, k, 1, count, seed=4)),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


async def run(sizes: tuple[int, ...] = (10_000, 100_000), count: int = 5) -> list[Result]:
    fixed = max(2, int(sizes[0] * CHANGING))
    figures: dict[int, dict[str, dict[str, float]]] = {}
    for n in sizes:
        figures[n] = await measure(n, fixed, count)
        for path, s in figures[n].items():
            print(f"   {n:>7} servers, {path}: {describe(s)}", flush=True)
    out = []
    for n in sizes:
        inc, full = figures[n]["changes-since"], figures[n]["full"]
        out.append(
            Result(
                SCENARIO,
                f"CPU per poll, changes-since, {n:,} servers, 1% changing",
                inc["cpu_ms"],
                "ms",
                baseline=full["cpu_ms"],
                baseline_name="full re-list every poll",
                note=f"median of {count}; {describe(inc)} | baseline: {describe(full)}",
            )
        )
    for n in sizes:
        dig, full = figures[n]["full, digest"], figures[n]["full"]
        out.append(
            Result(
                SCENARIO,
                f"CPU per poll, full listing against the digest, {n:,} servers, 1% changing",
                dig["cpu_ms"],
                "ms",
                baseline=full["cpu_ms"],
                baseline_name="full re-list every poll",
                note=f"median of {count}; {describe(dig)}",
            )
        )
    small, big = sizes[0], sizes[-1]
    if big == small:
        return out
    a, b = figures[small]["changes-since"], figures[big]["changes-since"]
    per = [f["cpu_ms"] / max(1.0, f["listed"]) for f in (a, b)]
    out.append(
        Result(
            SCENARIO,
            f"changes-since: CPU per changed server, {big:,} vs {small:,} servers",
            per[1],
            "ms",
            baseline=per[0],
            baseline_name=f"{small:,} servers",
            note="1% changing at each size; target: ratio about 1 (cost follows the changes)",
        )
    )
    a, b = figures[small]["changes-since, fixed"], figures[big]["changes-since, fixed"]
    out.append(
        Result(
            SCENARIO,
            f"changes-since: CPU per poll, {fixed:,} changing, {big:,} vs {small:,} servers",
            b["cpu_ms"],
            "ms",
            baseline=a["cpu_ms"],
            baseline_name=f"{small:,} servers",
            note=f"target: ratio about 1 | {big:,}: {describe(b)} | {small:,}: {describe(a)}",
        )
    )
    a, b = figures[small]["full"], figures[big]["full"]
    out.append(
        Result(
            SCENARIO,
            f"full re-list: CPU per poll, {big:,} vs {small:,} servers",
            b["cpu_ms"],
            "ms",
            baseline=a["cpu_ms"],
            baseline_name=f"{small:,} servers",
            note="for reference: a full listing grows with the fleet",
        )
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--polls", type=int, default=5)
    args = parser.parse_args()
    quiet_logs()
    print_machine(machine(None))
    print(table(asyncio.run(run(tuple(args.sizes), args.polls))))


if __name__ == "__main__":
    main()
