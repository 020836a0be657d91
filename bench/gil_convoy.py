"""GIL convoy: what a thread computing beside the event loop costs the loop's SQLite reads.

The sqlite3 module lets the GIL go around each step of a statement (each row), as a socket
send does. A thread that computes in Python meanwhile takes the GIL at each of those
moments and keeps it until its switch interval runs out (`sys.getswitchinterval()`), so a
read of 100 rows on the loop's thread waits up to 100 intervals. That is what held
`canopy up`'s loop under load while a sim cloud turned its listing pages into objects in a
worker thread (bench/loop_stalls.py; docs/architecture.md, "A thread computing beside the
loop"). The sim now reads its pages on the loop's thread, in chunks.

Measured here, in one process: a 100-row page read by primary key from a table of 100,000
rows (`SELECT ... WHERE id > ? ORDER BY id LIMIT 100`), p50 and p99 over `--reads`, alone
(the baseline) and beside one thread running Python without pause, at CPython's 5 ms
switch interval, canopy's 0.5 ms (canopy/gil.py) and 0.1 ms.

Then the case that mattered: a sim cloud's full listing of `--servers` (100,000), every
page, while a task on the same loop reads such a page every 5 ms and measures how late its
timer fired (the loop's lag). The sim's pages as canopy reads them (on the loop's thread,
`providers/sim/listing.CHUNK` servers between two yields) against the same pages read and
turned into objects in a worker thread, as the sim did before (reproduced here, for the
baseline): the probe's page read and its lag, p50 and p99.

Run alone: .venv/bin/python -m bench.gil_convoy [--reads 300] [--servers 100000]
A diagnostic, not in the default set: `python -m bench.run --only gil_convoy`.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench.common import Result, machine, print_machine, table
from bench.seed import Seeded, seed_sim
from canopy.domain.clock import SystemClock
from canopy.gil import shorten_switches
from canopy.providers.base import ListPage
from canopy.providers.sim import listing
from canopy.providers.sim.driver import PAGE as SIM_PAGE
from canopy.providers.sim.driver import SimCompute
from canopy.providers.sim.options import SimSettings
from canopy.providers.sim.status import to_remote

SCENARIO = "gil_convoy"
ROWS = 100_000
PAGE = 100
INTERVALS = (0.005, 0.0005, 0.0001)


def _table() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, body TEXT)")
    conn.executemany(
        "INSERT INTO t VALUES (?, ?, ?)", ((i, f"web-{i}", "x" * 200) for i in range(ROWS))
    )
    return conn


def _read(conn: sqlite3.Connection, i: int) -> float:
    """Latency (ms) of the `i`-th page read (each at a different place in the table)."""
    start = time.perf_counter()
    conn.execute(
        "SELECT id, name, body FROM t WHERE id > ? ORDER BY id LIMIT ?",
        ((i * 331) % (ROWS - PAGE), PAGE),
    ).fetchall()
    return (time.perf_counter() - start) * 1000


def _reads(conn: sqlite3.Connection, n: int) -> list[float]:
    """Latency (ms) of `n` page reads."""
    return [_read(conn, i) for i in range(n)]


def _p50_p99(
    case: str, figures: list[float], baseline: list[float], baseline_name: str, note: str
) -> list[Result]:
    """The p50 and p99 of `figures` (ms) against `baseline`'s; `case` has a `{q}`."""
    return [
        Result(
            SCENARIO,
            case.format(q=q),
            _p(figures, q),
            "ms",
            baseline=_p(baseline, q),
            baseline_name=baseline_name,
            note=note,
        )
        for q in (50, 99)
    ]


def _compute(stop: list[bool]) -> None:
    while not stop:  # never lets the GIL go of itself, as a thread parsing an answer
        sum(range(1000))


def _p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def run(reads: int = 300) -> list[Result]:
    conn = _table()
    before = sys.getswitchinterval()
    results: list[Result] = []
    try:
        for interval in INTERVALS:
            sys.setswitchinterval(interval)
            alone = _reads(conn, reads)
            stop: list[bool] = []

            thread = threading.Thread(target=_compute, args=(stop,), daemon=True)
            thread.start()
            try:
                beside = _reads(conn, reads)
            finally:
                stop.append(True)
                thread.join()
            results += _p50_p99(
                f"page of {PAGE} rows, p{{q}}, beside a computing thread,"
                f" switch interval {interval * 1000:g} ms",
                beside,
                alone,
                "alone",
                f"{reads} reads each",
            )
    finally:
        sys.setswitchinterval(before)
        conn.close()
    return results


Lister = Callable[[SimCompute], Awaitable[int]]


async def _on_the_loop(sim: SimCompute) -> int:
    """Every page as canopy's sim driver reads it (listing.page, chunks on the loop), one
    at a time, as sync takes them (controllers/sync_pages.py)."""
    listed, marker = 0, None
    while True:
        page = await sim.list_page(None, marker, SIM_PAGE)
        listed += len(page.servers)
        if page.next is None:
            return listed
        marker = page.next


async def _in_a_thread(sim: SimCompute) -> int:
    """Every page read and turned into objects in a worker thread (the sim before)."""
    store = sim._store
    listed, marker = 0, None
    while True:
        after = int(marker) if marker else 0

        def read(after: int = after) -> ListPage:
            now = int(time.time() * 1_000_000)
            with store.borrowed() as conn:
                rows = listing.each_server(
                    conn, tagged_only=True, include_deleted=False, after=after, limit=SIM_PAGE
                )
                servers, last = [], after
                for row in rows:
                    servers.append(to_remote(row, now))
                    last = row.seq
            return ListPage(servers, str(last) if len(servers) >= SIM_PAGE else None)

        page = await asyncio.to_thread(read)
        listed += len(page.servers)
        if page.next is None:
            return listed
        marker = page.next


async def _beside(
    lister: Lister, sim: SimCompute, db: sqlite3.Connection
) -> tuple[list[float], list[float], float]:
    """The probe's page reads and timer lags (ms) while `lister` lists the sim once, and
    how long the listing took (s)."""
    reads: list[float] = []
    lags: list[float] = []
    done = asyncio.Event()

    async def probe() -> None:
        i = 0
        while not done.is_set():
            start = time.perf_counter()
            await asyncio.sleep(0.005)
            lags.append((time.perf_counter() - start - 0.005) * 1000)
            reads.append(_read(db, i))
            i += 1

    task = asyncio.create_task(probe())
    started = time.perf_counter()
    try:
        await lister(sim)
    finally:
        took = time.perf_counter() - started
        done.set()
        await task
    return reads, lags, took


async def listing_beside_reads(servers: int = 100_000) -> list[Result]:
    before = sys.getswitchinterval()
    shorten_switches()  # as in a serving process
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "sim.db"
        settings = SimSettings(api_latency_ms=0, hosts=1, host_vcpus=1_000_000)
        sim = SimCompute(
            name="sim", settings=settings, state_file=state, clock=SystemClock(), seed=1
        )
        db = _table()
        try:
            await sim.capacity()  # creates the state file
            seeded = [Seeded(str(uuid.uuid4()), str(uuid.uuid4())) for _ in range(servers)]
            seed_sim(state, seeded, when_us=int(time.time() * 1_000_000) - 10_000_000)
            measured: dict[str, tuple[list[float], list[float], float]] = {}
            for name, lister in (("thread", _in_a_thread), ("loop", _on_the_loop)):
                await lister(sim)  # warm: the state file's pages in the OS cache
                measured[name] = await _beside(lister, sim, db)
        finally:
            await sim.close()
            db.close()
            sys.setswitchinterval(before)
    loop, thread = measured["loop"], measured["thread"]
    out: list[Result] = []
    series = {"page read": (loop[0], thread[0]), "timer lag": (loop[1], thread[1])}
    for what, (on_loop, in_thread) in series.items():
        out += _p50_p99(
            f"{what} p{{q}} on the loop during a full sim listing of {servers:,},"
            f" chunks of {listing.CHUNK} on the loop",
            on_loop,
            in_thread,
            "pages in a worker thread",
            f"{len(on_loop)} probes (thread: {len(in_thread)}); listing took"
            f" {loop[2]:.2f} s (thread: {thread[2]:.2f} s); switch interval 0.5 ms",
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reads", type=int, default=300)
    parser.add_argument("--servers", type=int, default=100_000)
    args = parser.parse_args()
    print_machine(machine(None))
    results = run(args.reads) + asyncio.run(listing_beside_reads(args.servers))
    print(table(results))


if __name__ == "__main__":
    main()
