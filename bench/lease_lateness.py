"""Leases on time, and the free-slot search, in real time.

Lateness: N leases (one 1-vcpu server each) whose starts are spread evenly over a window,
then BURST more due in the same second, on one sim cloud, SQLite (and PostgreSQL when it
is reachable), with one `Worker(rt).run(stop)` on a `SystemClock`. The leases are created
through `LeaseService.create` (placed and claimed) a day ahead, then their windows, events
and claims are moved to the benchmark's seconds in one transaction, and the worker is
woken as the API wakes it after a commit. A start's lateness is its event's `done_at`
(the instant the lease loop stepped it, as `lease show` reports it) minus its time.
With `teardown`, one more lease ends in the burst's second: it runs now on a second,
slow cloud (every API call 2 s) with TEARDOWN servers booted into it, whose deletes the
end asks for; its end's lateness is reported, and the burst's starts must not wait for
the deletes (the power controller's, each a fenced step of its own).
Yardstick: Blazar polls its events every 10 s, so a start waits for the next tick:
uniform over [0, 10) s, p50 5 s, p99 9.9 s, max 10 s, before its batch even runs.

Free-slot search: SLOT_LEASES reservation claims (one per lease, 1..4 vcpus, 1..12 h)
spread over two weeks on a private cloud of 1,024 vcpus and a priced public one under a
spend cap, plus open-ended server claims; then QUERIES searches (`find_slot`, in a read
transaction, as the API runs it: validation, the two queries, the sweep in a thread) of
1..200 servers of m1.small for 1..24 h in the coming week. Latency per query, p50/p99.

Run alone: .venv/bin/python -m bench.lease_lateness [--smoke]; the free-slot part alone:
.venv/bin/python -m bench.lease_lateness --slot-only [--queries N]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update

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
from canopy.bootstrap import ensure_project, open_database, seed
from canopy.config import Settings, load_settings
from canopy.controllers.runtime import Runtime
from canopy.controllers.worker import Worker
from canopy.domain.clock import SystemClock
from canopy.domain.context import RequestContext
from canopy.providers.registry import build_drivers
from canopy.reservations.find_slot import find_slot
from canopy.reservations.service import LeaseService
from canopy.reservations.states import EventStatus, EventType
from canopy.services.servers import CreateServer, ServerService
from canopy.store.models import Claim, Lease, LeaseEvent, Reservation, Server

SCENARIO = "lease_lateness"
BLAZAR_POLL_S = 10.0
SLOT_LEASES = 10_000
TEARDOWN = 8  # servers of the lease that ends on the slow cloud
SLOW_MS = 2000
QUERIES = 200


def make_settings(data_dir: Path, url: str | None, clouds: list[dict[str, Any]]) -> Settings:
    return load_settings(
        None,
        env={},
        overrides={
            "data_dir": str(data_dir),
            "database": {"url": url or f"sqlite+aiosqlite:///{data_dir}/canopy.db"},
            "clouds": clouds,
            "scheduler": {"burst_threshold": 0.8, "max_spend_per_hour": 20.0},
            "controllers": {"poll_seconds": 0.5},
        },
    )


def _sim(hosts: int, vcpus: int, price: float = 0.0) -> dict[str, Any]:
    return {
        "hosts": hosts,
        "host_vcpus": vcpus,
        "host_ram_mb": vcpus * 4096,
        "boot_seconds": 0.5,
        "api_latency_ms": 1,
        "price_per_vcpu_hour": price,
        "seed": 1,
    }


def pct(xs: Sequence[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def _when(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S")


async def _backend_url(backend: str, label: str) -> tuple[str | None, str | None]:
    if backend != "postgres":
        return None, None
    name = scratch_name(label)
    return await pg_create(name), name


# Lateness --------------------------------------------------------------------------------


async def _create(svc: LeaseService, db: Any, ctx: RequestContext, n: int, far: datetime) -> None:
    for i in range(n):
        body = {
            "name": f"l{i}",
            "start_date": _when(far),
            "end_date": _when(far + timedelta(hours=1)),
            "reservations": [
                {
                    "resource_type": "virtual:instance",
                    "amount": 1,
                    "vcpus": 1,
                    "memory_mb": 512,
                    "disk_gb": 0,
                    "affinity": "False",
                    "resource_properties": "",
                }
            ],
            "events": [],
        }
        async with db.session() as s:
            await svc.create(s, ctx, body)


async def _move(db: Any, starts: list[datetime], skip: str | None = None) -> dict[str, datetime]:
    """Give the leases (in creation order, but `skip`) the starts asked for; an hour long."""
    async with db.session() as s:
        q = select(Lease.id).where(Lease.id != (skip or "")).order_by(Lease.created_at)
        ids = list((await s.execute(q)).scalars())
        pairs = await s.execute(select(Reservation.lease_id, Reservation.id))
        res = {lid: rid for lid, rid in pairs}
        rows = [
            {"b_id": lid, "b_s": at, "b_e": at + timedelta(hours=1)}
            for lid, at in zip(ids, starts, strict=True)
        ]
        t = Lease.__table__
        await s.execute(
            update(t)
            .where(t.c.id == bindparam("b_id"))
            .values(
                start_at=bindparam("b_s"), end_at=bindparam("b_e"), next_attempt_at=bindparam("b_s")
            ),
            rows,
        )
        e = LeaseEvent.__table__
        await s.execute(
            update(e)
            .where(e.c.lease_id == bindparam("b_id"), e.c.event_type == EventType.START.value)
            .values(time=bindparam("b_s")),
            rows,
        )
        await s.execute(
            update(e)
            .where(e.c.lease_id == bindparam("b_id"), e.c.event_type != EventType.START.value)
            .values(time=bindparam("b_e")),
            rows,
        )
        c = Claim.__table__
        await s.execute(
            update(c)
            .where(c.c.reservation_id == bindparam("b_r"))
            .values(starts_at=bindparam("b_s"), ends_at=bindparam("b_e")),
            [{"b_r": res[r["b_id"]], "b_s": r["b_s"], "b_e": r["b_e"]} for r in rows],
        )
    return dict(zip(ids, starts, strict=True))


async def _wait(db: Any, q: Any, want: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while True:
        async with db.read() as s:
            if await s.scalar(q) == want:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {seconds:g} s")
        await asyncio.sleep(0.1)


async def _slow_lease(
    svc: LeaseService, servers: ServerService, db: Any, ctx: RequestContext, end: datetime
) -> tuple[str, list[str]]:
    """A lease running now on the slow cloud, with TEARDOWN ACTIVE servers in it."""
    body = {
        "name": "slow",
        "start_date": "now",
        "end_date": _when(end),
        "reservations": [
            {
                "resource_type": "virtual:instance",
                "amount": TEARDOWN,
                "vcpus": 1,
                "memory_mb": 512,
                "disk_gb": 0,
                "affinity": "True",
                "resource_properties": "",
            }
        ],
        "events": [],
    }
    async with db.session() as s:
        lease = await svc.create(s, ctx, body)
        lease_id = lease.id
    async with db.read() as s:
        rid = await s.scalar(select(Reservation.id).where(Reservation.lease_id == lease_id))
        placed = await s.scalar(select(Reservation.placement).where(Reservation.id == rid))
    assert rid is not None and placed is not None
    if [p["cloud"] for p in placed] != ["slow"]:
        raise RuntimeError(f"the slow lease is held on {placed}, not on the slow cloud")
    active = select(Lease.status).where(Lease.id == lease_id)
    await _wait(db, active, "ACTIVE", 10, "the slow lease's start")
    made = await servers.create(
        ctx,
        CreateServer(
            name="teardown", flavor=rid, image="cirros", min_count=TEARDOWN, max_count=TEARDOWN
        ),
    )
    sids = [sv.id for sv in made]
    up = select(func.count()).where(Server.id.in_(sids), Server.status == "ACTIVE")
    await _wait(db, up, TEARDOWN, 60, "the slow lease's servers")
    return lease_id, sids


async def _end_at(db: Any, lease_id: str, end: datetime) -> None:
    """Move a running lease's end (and its before-end, and its claims' end) to `end`."""
    async with db.session() as s:
        await s.execute(update(Lease).where(Lease.id == lease_id).values(end_at=end))
        await s.execute(
            update(LeaseEvent)
            .where(LeaseEvent.lease_id == lease_id, LeaseEvent.status == EventStatus.UNDONE)
            .values(time=end)
        )
        await s.execute(update(Lease).where(Lease.id == lease_id).values(next_attempt_at=end))
        rids = select(Reservation.id).where(Reservation.lease_id == lease_id)
        await s.execute(update(Claim).where(Claim.reservation_id.in_(rids)).values(ends_at=end))


async def lateness_run(
    backend: str, spread: int, spread_s: float, burst: int, teardown: bool = False
) -> tuple[list[float], list[float], float | None]:
    """Lateness in seconds of the spread leases' starts, of the burst's, and (with
    `teardown`) of the slow lease's end, due in the burst's second."""
    url, pg_name = await _backend_url(backend, "lease")
    tmp = Path(tempfile.mkdtemp(prefix="canopy-bench-lease-"))
    clouds = [{"name": "sim", "driver": "sim", "tier": 1, "sim": _sim(200, 64)}]
    if teardown:
        slow = _sim(1, 2 * TEARDOWN)
        slow["api_latency_ms"] = SLOW_MS
        clouds.append({"name": "slow", "driver": "sim", "tier": 0, "sim": slow})
    settings = make_settings(tmp, url, clouds)
    clock = SystemClock()
    db = await open_database(settings)
    drivers = build_drivers(settings, clock)
    try:
        await seed(db, settings, clock)
        unlimited = {"instances": -1, "cores": -1, "ram": -1}
        project = await ensure_project(db, clock, "bench", quotas=unlimited)
        ctx = RequestContext(project_id=project, user_id="bench")
        rt = Runtime(db=db, settings=settings, drivers=drivers, clock=clock, worker_id="bench")
        worker = Worker(rt)
        await worker.inventory.run_once(force=True)
        servers = ServerService(db, settings, clock)
        svc = LeaseService(settings, clock, servers)
        far = clock.now().replace(second=0, microsecond=0) + timedelta(days=1)
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        slow_id: str | None = None
        if teardown:
            slow_id, _ = await _slow_lease(svc, servers, db, ctx, far - timedelta(hours=1))
        await _create(svc, db, ctx, spread + burst, far)
        await asyncio.sleep(0.5)  # up and idle
        t0 = clock.now() + timedelta(seconds=1)
        step = spread_s / max(1, spread)
        starts = [t0 + timedelta(seconds=i * step) for i in range(spread)]
        one = (t0 + timedelta(seconds=spread_s + 1)).replace(microsecond=0)
        starts += [one] * burst
        await _move(db, starts, skip=slow_id)
        if slow_id is not None:
            await _end_at(db, slow_id, one)
        rt.wake.set()  # as the API does after a commit
        deadline = time.monotonic() + spread_s + 30
        while time.monotonic() < deadline:
            await asyncio.sleep(0.25)
            async with db.read() as s:
                left = await s.scalar(
                    select(LeaseEvent.id)
                    .where(
                        LeaseEvent.event_type == EventType.START.value,
                        LeaseEvent.status == EventStatus.UNDONE,
                    )
                    .limit(1)
                )
            if left is None:
                break
        stop.set()
        await task
        async with db.read() as s:
            done = (
                await s.execute(
                    select(LeaseEvent.time, LeaseEvent.done_at).where(
                        LeaseEvent.event_type == EventType.START.value,
                        LeaseEvent.lease_id != (slow_id or ""),  # started before the clock
                    )
                )
            ).all()
        if any(d is None for _, d in done):
            raise RuntimeError("some lease starts did not run within 30 s of their time")
        late = [(d - t).total_seconds() for t, d in done if d is not None]
        firsts = [(d - t).total_seconds() for t, d in done if d is not None and t != one]
        bursts = [(d - t).total_seconds() for t, d in done if d is not None and t == one]
        assert len(firsts) + len(bursts) == len(late)
        end_late: float | None = None
        if slow_id is not None:
            async with db.read() as s:
                end = (
                    await s.execute(
                        select(LeaseEvent.time, LeaseEvent.done_at).where(
                            LeaseEvent.lease_id == slow_id,
                            LeaseEvent.event_type == EventType.END.value,
                        )
                    )
                ).one()
            if end.done_at is None:
                raise RuntimeError("the slow lease did not end")
            end_late = (end.done_at - end.time).total_seconds()
        return firsts, bursts, end_late
    finally:
        for d in drivers.values():
            await d.close()
        await db.dispose()
        shutil.rmtree(tmp, ignore_errors=True)
        if pg_name is not None:
            await pg_drop(pg_name)


# Free-slot search ------------------------------------------------------------------------


async def slot_run(backend: str, leases: int, queries: int) -> list[float]:
    """Seconds per free-slot query with `leases` reservation claims in the store."""
    url, pg_name = await _backend_url(backend, "slot")
    tmp = Path(tempfile.mkdtemp(prefix="canopy-bench-slot-"))
    clouds = [
        {"name": "private", "driver": "sim", "tier": 0, "sim": _sim(64, 16)},
        {"name": "public", "driver": "sim", "tier": 1, "sim": _sim(1000, 64, price=0.048)},
    ]
    settings = make_settings(tmp, url, clouds)
    clock = SystemClock()
    db = await open_database(settings)
    drivers = build_drivers(settings, clock)
    rng = random.Random(1)
    try:
        await seed(db, settings, clock)
        rt = Runtime(db=db, settings=settings, drivers=drivers, clock=clock, worker_id="bench")
        await Worker(rt).inventory.run_once(force=True)
        now = clock.now()
        rows: list[dict[str, Any]] = []
        for _ in range(leases):
            start = now + timedelta(minutes=rng.randrange(0, 14 * 24 * 60))
            v = rng.randint(1, 4)
            public = rng.random() < 0.1
            rows.append(
                {
                    "reservation_id": str(uuid.uuid4()),
                    "cloud": "public" if public else "private",
                    "vcpus": v,
                    "ram_mb": v * 2048,
                    "disk_gb": 0,
                    "instances": 1,
                    "price_per_hour_micros": v * 48_000 if public else 0,
                    "starts_at": start,
                    "ends_at": start + timedelta(minutes=rng.randrange(60, 12 * 60)),
                    "created_at": now,
                }
            )
        async with db.session() as s:
            for i in range(0, len(rows), 1000):
                await s.execute(insert(Claim), rows[i : i + 1000])
        times: list[float] = []
        for _ in range(queries):
            after = now + timedelta(minutes=rng.randrange(0, 3 * 24 * 60))
            body = {
                "flavor": "m1.small",
                "count": rng.choice([1, 10, 50, 100, 200]),
                "duration": f"{rng.randint(1, 24)}h",
                "after": after.strftime("%Y-%m-%d %H:%M"),
            }
            t = time.perf_counter()
            async with db.read() as s:
                await find_slot(s, settings, clock.now(), body)
            times.append(time.perf_counter() - t)
        return times
    finally:
        for d in drivers.values():
            await d.close()
        await db.dispose()
        shutil.rmtree(tmp, ignore_errors=True)
        if pg_name is not None:
            await pg_drop(pg_name)


async def run(
    *,
    spread: int = 1000,
    spread_s: float = 60.0,
    burst: int = 200,
    slot_leases: int = SLOT_LEASES,
    queries: int = QUERIES,
    backends: tuple[str, ...] = ("sqlite", "postgres"),
) -> list[Result]:
    results: list[Result] = []
    for backend in backends:
        if backend == "postgres" and await pg_version() is None:
            print("  postgres: not reachable, skipped")
            continue
        firsts, bursts, end_late = await lateness_run(
            backend, spread, spread_s, burst, teardown=True
        )
        for label, xs in (
            (f"{spread} starts over {spread_s:g} s", firsts),
            (f"{burst} starts in one second, beside a slow teardown", bursts),
        ):
            for name, q, blazar in (("p50", 0.5, 5.0), ("p99", 0.99, 9.9), ("max", 1.0, 10.0)):
                results.append(
                    Result(
                        SCENARIO,
                        f"{backend}: {label}, lateness {name}",
                        pct(xs, q),
                        "s",
                        baseline=blazar,
                        baseline_name="Blazar's 10 s poll",
                        note="target p99 <= 1 s; done_at - time of start_lease",
                    )
                )
        assert end_late is not None
        results.append(
            Result(
                SCENARIO,
                f"{backend}: end of a lease with {TEARDOWN} servers on a {SLOW_MS} ms/call "
                "cloud, in that second, lateness",
                end_late,
                "s",
                baseline=5.0,
                baseline_name="Blazar's 10 s poll (mean)",
                note="its deletes run after, in the power controller",
            )
        )
        times = await slot_run(backend, slot_leases, queries)
        print(f"  {backend}: lateness and {len(times)} free-slot queries done")
        for name, q in (("p50", 0.5), ("p99", 0.99)):
            results.append(
                Result(
                    SCENARIO,
                    f"{backend}: free-slot query {name}, {slot_leases:,} leases",
                    pct(times, q) * 1e3,
                    "ms",
                    note=f"target p99 <= 100 ms; mean {statistics.fmean(times) * 1e3:.1f} ms",
                )
            )
    return results


async def smoke() -> list[Result]:
    """Tiny sizes, SQLite: does it run? (a few seconds; the figures mean nothing)."""
    return await run(
        spread=20, spread_s=1.0, burst=20, slot_leases=300, queries=10, backends=("sqlite",)
    )


async def slots_only(backends: tuple[str, ...], queries: int) -> list[Result]:
    """The free-slot part alone (`--slot-only`): its p50/p99/max per backend."""
    results: list[Result] = []
    for backend in backends:
        if backend == "postgres" and await pg_version() is None:
            continue
        times = await slot_run(backend, SLOT_LEASES, queries)
        for name, q in (("p50", 0.5), ("p99", 0.99), ("max", 1.0)):
            results.append(
                Result(
                    SCENARIO,
                    f"{backend}: free-slot query {name}, {SLOT_LEASES:,} leases",
                    pct(times, q) * 1e3,
                    "ms",
                    note=f"target p99 <= 100 ms; mean {statistics.fmean(times) * 1e3:.1f} ms",
                )
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument(
        "--slot-only",
        action="store_true",
        help="only the free-slot query latency (10,000 leases), on SQLite and PostgreSQL",
    )
    parser.add_argument("--queries", type=int, default=QUERIES, help="with --slot-only")
    args = parser.parse_args()
    quiet_logs()
    print_machine(machine(asyncio.run(pg_version())))
    if args.slot_only:
        results = asyncio.run(slots_only(("sqlite", "postgres"), args.queries))
    else:
        results = asyncio.run(smoke() if args.smoke else run())
    print(table(results))


if __name__ == "__main__":
    main()
