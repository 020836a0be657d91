"""Sync's longest loop hold while it writes servers whose state changed out of band.

One sim cloud holds N steady servers (`bench.loop_stalls.prepare`). Before each measured
poll, a fraction of its running servers is stopped behind canopy's back (written straight
into the sim's state file by `bench.seed.drift`, stops only: deletes are written
by `sync_gone`'s bulk path and are another figure). One forced `SyncController.sync_cloud`
then sees them, and every callback the event loop runs meanwhile is timed (a wrapper round
`asyncio.Handle._run`, installed by this script only): the longest is the longest hold,
the time anything else on the loop (a request) would have waited.

`--trace FILE` also samples the loop thread's stack while it is held over 3 ms
(bench/stall_trace.py), to see where the time goes.

Run alone: .venv/bin/python -m bench.sync_holds [--servers 10000] [--stopped 0.1 0.01]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import Result, quiet_logs, table
from bench.loop_stalls import prepare
from bench.seed import drift
from bench.sync_cost import settings_for
from canopy.bootstrap import open_database
from canopy.controllers import sync as sync_module
from canopy.controllers.runtime import Runtime
from canopy.controllers.sync import SyncController
from canopy.domain.clock import SystemClock
from canopy.providers.registry import build_drivers


def where(handle: Any) -> str:
    """Where the task a callback steps is suspended: its innermost canopy frames."""
    task = getattr(getattr(handle, "_callback", None), "__self__", None)
    if not isinstance(task, asyncio.Task):
        return repr(handle)[:80]
    found: list[str] = []
    obj: Any = task.get_coro()
    while obj is not None:
        frame = getattr(obj, "cr_frame", None) or getattr(obj, "ag_frame", None)
        frame = frame or getattr(obj, "gi_frame", None)
        if frame is not None and "/canopy/" in frame.f_code.co_filename:
            found.append(f"{Path(frame.f_code.co_filename).name}:{frame.f_lineno}")
        obj = (
            getattr(obj, "cr_await", None)
            or getattr(obj, "ag_await", None)
            or getattr(obj, "gi_yieldfrom", None)
        )
    return "<".join(reversed(found[-3:])) or repr(task.get_coro())[:60]


class Holds:
    """The duration of every loop callback while `on` (seconds), and where the task it
    stepped was suspended before and after (bench only: a stack walk per callback,
    outside the timed span)."""

    def __init__(self) -> None:
        self.on = False
        self.seen: list[float] = []
        self.cpu: list[float] = []
        self.spans: list[tuple[float, float, str]] = []
        self.samples: list[str] = []  # the running callback's stacks (--sample)
        self.kept: list[tuple[float, list[str]]] = []  # the longest callbacks' samples
        self.writes = False  # whether the running callback wrote a slice (`observe`)
        self.write_holds: list[float] = []  # the callbacks that did
        self.write_cpu: list[float] = []  # and their CPU

    def sample(self) -> None:
        """Sample the loop thread's stack every 0.5 ms of its CPU (a signal: no GIL bias)."""

        def on_signal(_sig: int, frame: Any) -> None:
            if self.on and frame is not None:
                names: list[str] = []
                while frame is not None and len(names) < 6:
                    code = frame.f_code
                    if "/canopy/" in code.co_filename or "sqlalchemy" in code.co_filename:
                        names.append(f"{Path(code.co_filename).name}:{frame.f_lineno}")
                    frame = frame.f_back
                self.samples.append("<".join(names))

        signal.signal(signal.SIGPROF, on_signal)
        signal.setitimer(signal.ITIMER_PROF, 0.0005, 0.0005)

    def install(self) -> None:
        original = asyncio.events.Handle._run
        holds = self

        def timed(handle: Any) -> None:
            if not holds.on:
                original(handle)
                return
            before = where(handle)
            holds.writes = False
            c0 = time.thread_time()
            t0 = time.perf_counter()
            try:
                original(handle)
            finally:
                took = time.perf_counter() - t0
                cpu = time.thread_time() - c0
            if not holds.on:
                # The bench's own callback that ended the span: it goes on to stop the
                # next repeat's servers (`drift`), which is no part of the pass.
                return
            holds.seen.append(took)
            holds.cpu.append(cpu)
            holds.spans.append((took, cpu, f"{before} -> {where(handle)}"))
            if holds.writes:
                holds.write_holds.append(took)
                holds.write_cpu.append(cpu)
            if holds.samples:
                holds.kept.append((cpu, holds.samples[:]))
                holds.kept = sorted(holds.kept, key=lambda k: k[0])[-3:]
                holds.samples.clear()

        asyncio.events.Handle._run = timed  # type: ignore[method-assign,assignment]
        # A write slice's callback is the one that calls sync's `observe` (wrapped here).
        observe = getattr(sync_module, "observe")  # noqa: B009

        async def observed(*args: Any, **kwargs: Any) -> Any:
            holds.writes = True
            return await observe(*args, **kwargs)

        setattr(sync_module, "observe", observed)  # noqa: B010


SCENARIO = "sync_holds"


async def measure(
    n: int, fractions: list[float], repeats: int, trace: str | None, sample: bool = False
) -> list[Result]:
    """The longest loop hold of a forced pass with each fraction of the servers stopped,
    against the same pass with none changed (the baseline, first, in the same run)."""
    tmp = Path(tempfile.mkdtemp(prefix="canopy-bench-holds-"))
    holds = Holds()
    original = asyncio.events.Handle._run
    holds.install()
    out: list[Result] = []
    baseline: list[float] = []
    if sample:
        holds.sample()
    try:
        await prepare(tmp, n)
        settings = settings_for(tmp, 10**6)
        clock = SystemClock()
        db = await open_database(settings)
        drivers = build_drivers(settings, clock)
        rt = Runtime(db=db, settings=settings, drivers=drivers, clock=clock, worker_id="bench")
        sync = SyncController(rt)
        rng = random.Random(7)
        if trace:
            from bench.stall_trace import install

            install(Path(trace), threshold=0.003, every=0.0005)
        try:
            await sync.sync_cloud("sim", force=True)  # the first pass is a full one
            for frac in [0.0, *fractions]:
                longest: list[float] = []
                cpu_longest: list[float] = []
                write_longest: list[float] = []
                write_cpu: list[float] = []
                for _ in range(repeats):
                    k = (
                        drift(tmp / "sim-sim.db", max(1, int(n * frac)), rng, stopped=1.0)
                        if frac
                        else 0
                    )
                    holds.seen.clear()
                    holds.cpu.clear()
                    holds.spans.clear()
                    holds.kept.clear()
                    holds.write_holds.clear()
                    holds.write_cpu.clear()
                    # A callback of its own on either side, so the bench's own steps (the
                    # sim's state file written above) are no callback of the pass.
                    await asyncio.sleep(0)
                    holds.on = True
                    await asyncio.sleep(0)
                    t0 = time.perf_counter()
                    assert await sync.sync_cloud("sim", force=True)
                    took = time.perf_counter() - t0
                    await asyncio.sleep(0)
                    holds.on = False
                    top = sorted(holds.seen)[-3:]
                    longest.append(top[-1])
                    cpu_longest.append(max(holds.cpu))
                    write_longest.append(max(holds.write_holds, default=0.0))
                    write_cpu.append(max(holds.write_cpu, default=0.0))
                    print(
                        f"  {frac:.0%} stopped ({k} servers): pass {took * 1000:.0f} ms,"
                        f" longest holds {', '.join(f'{h * 1000:.1f}' for h in reversed(top))}"
                        f" ms ({len(holds.seen)} callbacks); longest CPU in one"
                        f" {max(holds.cpu) * 1000:.1f} ms; longest write slice"
                        f" {max(holds.write_holds, default=0.0) * 1000:.1f} ms",
                        flush=True,
                    )
                    for took_s, cpu_s, span in sorted(holds.spans)[-3:]:
                        print(f"      {took_s * 1000:.1f} ms ({cpu_s * 1000:.1f} CPU): {span}")
                    for cpu_s, stacks in holds.kept:
                        print(f"      samples of a {cpu_s * 1000:.1f} ms CPU callback:")
                        for stack, count in Counter(stacks).most_common(4):
                            print(f"        {count}x {stack}")
                ms = [h * 1000 for h in longest]
                cpu = [h * 1000 for h in cpu_longest]
                wr = [h * 1000 for h in write_longest]
                wc = [h * 1000 for h in write_cpu]
                print(
                    f"{n} servers, {frac:.0%} stopped: longest hold min {min(ms):.1f} ms,"
                    f" median {statistics.median(ms):.1f} ms; longest CPU in one hold min"
                    f" {min(cpu):.1f} ms, median {statistics.median(cpu):.1f} ms; longest write"
                    f" slice min {min(wr):.1f} ms, median {statistics.median(wr):.1f} ms"
                    f" (CPU min {min(wc):.1f} ms, median {statistics.median(wc):.1f} ms)"
                    f" (of {repeats});"
                    f" load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
                if not frac:
                    baseline = ms
                    continue
                out.append(
                    Result(
                        SCENARIO,
                        f"longest loop hold of a sync pass, {frac:.0%} of {n:,} stopped",
                        statistics.median(ms),
                        "ms",
                        baseline=statistics.median(baseline),
                        baseline_name="the same pass, nothing changed",
                        note=f"min {min(ms):.1f} of {repeats}; longest write slice median"
                        f" {statistics.median(wr):.1f} ms ({statistics.median(wc):.1f} CPU)",
                    )
                )
        finally:
            for d in drivers.values():
                await d.close()
            await db.dispose()
    finally:
        asyncio.events.Handle._run = original  # type: ignore[method-assign]
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=10_000)
    parser.add_argument("--stopped", type=float, nargs="+", default=[0.1, 0.01])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--trace", default=None)
    parser.add_argument("--sample", action="store_true", help="sample the longest holds")
    args = parser.parse_args()
    quiet_logs()
    results = asyncio.run(
        measure(args.servers, args.stopped, args.repeats, args.trace, args.sample)
    )
    print(table(results))


if __name__ == "__main__":
    main()
