"""Run every benchmark scenario and print one results table (`make bench`).

Scenarios, each also runnable alone:

- scheduler_pure  the pure scheduler, no database   (.venv/bin/python bench/scheduler_pure.py)
- scheduler       placement with claims, 5, 50 and 500 clouds, SQLite and PostgreSQL
                  (python -m bench.scheduler)
- end_to_end      1,000 boots through the controllers  (python -m bench.end_to_end)
- end_to_end_cpu  CPU per controller step, each alone (python -m bench.end_to_end --breakdown);
                  a diagnostic, not in the default set: `--only end_to_end_cpu` or `--all`
- loop_stalls     /healthz of `canopy up` while sync runs, idle and under load (drift, creates,
                  page readers), 100,000 vs 1,000 servers (python -m bench.loop_stalls)
- api_writes      creates/s, 50 HTTP clients against `canopy up` (controllers running),
                  empty project vs 100,000 servers, SQLite and PostgreSQL
                  (python -m bench.api_writes)
- stacks          stacks of 200 servers (wide, deep, diamond): create time against the
                  critical path measured in the same run (python -m bench.stacks)
- lease_lateness  lease start lateness, 1,000 over a minute and 200 in one second, and
                  free-slot query latency with 10,000 leases (python -m bench.lease_lateness)
- sync_cost       one sync poll with 1% of 10,000 and 100,000 servers changing: driver calls,
                  rows read and written, CPU; against a full re-list every poll
                  (python -m bench.sync_cost)
- sync_holds      the longest event-loop hold of a sync pass over 10,000 and 100,000 servers
                  with 10% and 1% stopped out of band, against the same pass with nothing
                  changed
                  (python -m bench.sync_holds)
- memory          RSS of `canopy up` with 100,000 servers, controllers running, against
                  1,000 (python -m bench.memory)
- api_reads       pages/s of 50 clients listing pages of 100 over 100,000 servers, against
                  a prepared-body route on the same server (python -m bench.api_reads)
- list_latency    list pages (first, 500th, last, exact name, changes-since) over 20 clouds
                  and 1 while the controllers run, against a fan-out gateway
                  (python -m bench.list_latency)
- gil_convoy      a 100-row SQLite read on the loop's thread beside a thread computing, at
                  three GIL switch intervals; then such reads, and the loop's timer lag,
                  during a full sim listing read on the loop in chunks against one read
                  in a worker thread (python -m bench.gil_convoy); a diagnostic, not in
                  the default set
- page_cpu        CPU per page in-process against a prepared body (python -m bench.page_cpu);
                  a diagnostic, not in the default set (it also measures an older checkout)
- burst           50 creates at once through HTTP with the private cloud full: 202 -> ACTIVE
                  minus the boot time, against the sim driver alone (python -m bench.burst)
- real_clouds     200 boots through the controllers on moto's EC2 and on a real Nova, each
                  against the emulator alone (python -m bench.real_clouds); smoke: moto only

`--smoke` runs every default scenario at tiny sizes, once, on SQLite (under a minute on a
quiet machine); `make bench-smoke`, part of `make test`, runs it with `--all`, the
diagnostics too, so no scenario rots. Its figures mean nothing.

`--only NAME ...` runs a subset; `--markdown` also prints the table as Markdown, for
BENCHMARKS.md. Every ratio compares a figure with a baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from bench import (
    api_reads,
    api_writes,
    burst,
    end_to_end,
    gil_convoy,
    lease_lateness,
    list_latency,
    loop_stalls,
    memory,
    page_cpu,
    real_clouds,
    scheduler,
    scheduler_pure,
    stacks,
    sync_cost,
    sync_holds,
)
from bench.common import (
    Result,
    fmt,
    fmt_ratio,
    machine,
    pg_version,
    print_machine,
    quiet_logs,
    table,
)
from canopy import event_loop

SCENARIOS = (
    "scheduler_pure",
    "scheduler",
    "end_to_end",
    "loop_stalls",
    "api_writes",
    "sync_cost",
    "sync_holds",
    "memory",
    "api_reads",
    "list_latency",
    "lease_lateness",
    "stacks",
    "burst",
    "real_clouds",
)
EXTRA = ("end_to_end_cpu", "page_cpu", "gil_convoy")


def pure_results(smoke: bool = False) -> list[Result]:
    """The existing micro-benchmark, as rows: with apply_claim vs a fixed snapshot."""
    us = scheduler_pure.calibration()
    out = []
    for n in (5,) if smoke else (5, 50):
        fixed, claimed = (
            scheduler_pure.bench(n, seconds=0.05, repeats=1) if smoke else scheduler_pure.bench(n)
        )
        out.append(
            Result(
                "scheduler_pure",
                f"{n} clouds, with apply_claim",
                claimed,
                "decisions/s",
                baseline=fixed,
                baseline_name="fixed snapshot",
                note=f"best of 5, CPU time; calibration sum(range(1000)) = {us:.1f} us",
            )
        )
    return out


def markdown(results: list[Result]) -> str:
    lines = [
        "| scenario | case | figure | baseline (same run) | ratio | note |",
        "|---|---|---:|---:|---:|---|",
    ]
    for r in results:
        base = f"{fmt(r.baseline)} ({r.baseline_name})" if r.baseline is not None else "-"
        ratio = fmt_ratio(r.ratio)
        lines.append(
            f"| {r.scenario} | {r.case} | {fmt(r.value)} {r.unit} | {base} | {ratio} | {r.note} |"
        )
    return "\n".join(lines)


def one(name: str, smoke: bool) -> list[Result]:
    """The results of scenario `name`; with `smoke`, at tiny sizes, once, on SQLite."""
    if name == "scheduler_pure":
        return pure_results(smoke)
    if name == "scheduler":
        if smoke:
            return asyncio.run(
                scheduler.run(
                    servers=50, repeats=1, clouds=(5,), backends=("sqlite",), batches=(64,)
                )
            )
        return asyncio.run(scheduler.run())
    if name == "end_to_end":
        # On the loop the controllers run on in `canopy worker` (canopy/event_loop.py).
        if smoke:
            return event_loop.run(end_to_end.run(repeats=1, backends=("sqlite",)))
        return event_loop.run(end_to_end.run())
    if name == "loop_stalls":
        if smoke:
            return loop_stalls.run(servers=300, seconds=1.0, repeats=1, baseline=100, settle=0.5)
        return loop_stalls.run()
    if name == "api_writes":
        if smoke:
            return api_writes.run(
                servers=300, seconds=2.0, repeats=1, backends=("sqlite",), settle=0.0, clients=10
            )
        return api_writes.run()
    if name == "sync_cost":
        if smoke:
            return asyncio.run(sync_cost.run(sizes=(300, 600), count=1))
        return asyncio.run(sync_cost.run())
    if name == "sync_holds":
        if smoke:
            return asyncio.run(sync_holds.measure(300, [0.1], 1, None))
        return [
            r
            for n in (10_000, 100_000)  # item 1 of issue 9 is at 100,000
            for r in asyncio.run(sync_holds.measure(n, [0.1, 0.01], 3, None))
        ]
    if name == "memory":
        if smoke:
            return memory.run(servers=300, seconds=1.0, repeats=1, baseline=100)
        return memory.run()
    if name == "api_reads":
        if smoke:
            return api_reads.run(servers=300, seconds=1.0, repeats=1)
        return api_reads.run()
    if name == "list_latency":
        if smoke:
            return list_latency.run(servers=300, requests=5, sequential_requests=2, settle=0.5)
        return list_latency.run()
    if name == "gil_convoy":
        if smoke:
            return gil_convoy.run(reads=20) + asyncio.run(gil_convoy.listing_beside_reads(300))
        return gil_convoy.run() + asyncio.run(gil_convoy.listing_beside_reads())
    if name == "page_cpu":
        return asyncio.run(page_cpu.run(servers=300, requests=10) if smoke else page_cpu.run())
    if name == "lease_lateness":
        return asyncio.run(lease_lateness.smoke() if smoke else lease_lateness.run())
    if name == "stacks":
        return asyncio.run(stacks.smoke() if smoke else stacks.run())
    if name == "burst":
        return burst.run(servers=10, boot=0.5, repeats=1) if smoke else burst.run()
    if name == "real_clouds":
        return real_clouds.smoke() if smoke else real_clouds.run()
    return event_loop.run(end_to_end.breakdown())


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the canopy benchmarks.")
    parser.add_argument("--only", nargs="+", choices=SCENARIOS + EXTRA, default=list(SCENARIOS))
    parser.add_argument("--all", action="store_true", help="the default set and the extras")
    parser.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, once: does it run?")
    args = parser.parse_args()
    quiet_logs()
    print_machine(machine(asyncio.run(pg_version())))
    results: list[Result] = []
    started = time.perf_counter()
    names = list(SCENARIOS + EXTRA) if args.all else args.only
    for name in names:
        t0 = time.perf_counter()
        print(f"\n== {name}", flush=True)
        results += one(name, args.smoke)
        print(f"   ({time.perf_counter() - t0:.0f}s)", flush=True)
    print(f"\nall scenarios: {time.perf_counter() - started:.0f}s\n")
    print(table(results))
    if args.markdown:
        print()
        print(markdown(results))


if __name__ == "__main__":
    main()
