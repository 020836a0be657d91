"""`canopy demo`: a load spike on the embedded default, shown live.

Two simulated clouds: `private` (tier 0, 16 vCPUs, free) and `public` (tier 1, large,
priced). A spike of servers fills private up to the burst threshold and bursts the rest to
public; the final table says where each server went, why, and what it costs per hour.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import select

from canopy.bootstrap import ensure_project, prepare
from canopy.cli.common import console
from canopy.config import Settings, load_settings
from canopy.controllers.runtime import Runtime
from canopy.controllers.worker import Worker
from canopy.domain.clock import SystemClock
from canopy.domain.context import RequestContext
from canopy.domain.money import format_amount
from canopy.providers.registry import build_drivers
from canopy.services.servers import CreateServer, ServerService
from canopy.store.db import Database
from canopy.store.models import Claim, Cloud, Placement, Server

TERMINAL = {"ACTIVE", "ERROR"}


def demo_settings(data_dir: Path) -> Settings:
    sim_fast = {
        "boot_seconds": 1.5,
        "boot_jitter": 0.4,
        "api_latency_ms": 30,
        "latency_jitter": 0.5,
        "action_seconds": 0.3,
    }
    return load_settings(
        None,
        env={},
        overrides={
            "data_dir": str(data_dir),
            "controllers": {"poll_seconds": 0.05, "sync_seconds": 0.25},
            "clouds": [
                {
                    "name": "private",
                    "driver": "sim",
                    "tier": 0,
                    "sim": {"hosts": 2, "host_vcpus": 8, "host_ram_mb": 32768, **sim_fast},
                },
                {
                    "name": "public",
                    "driver": "sim",
                    "tier": 1,
                    "sim": {
                        "hosts": 1000,
                        "host_vcpus": 64,
                        "host_ram_mb": 262144,
                        "price_per_vcpu_hour": 0.048,
                        **sim_fast,
                    },
                },
            ],
        },
    )


async def run_demo(*, servers: int, flavor: str, keep: bool, data_dir: Path | None) -> None:
    own_dir = data_dir is None
    path = Path(tempfile.mkdtemp(prefix="canopy-demo-")) if data_dir is None else data_dir
    settings = demo_settings(path)
    clock = SystemClock()
    db = (await prepare(settings, clock)).db
    drivers = build_drivers(settings, clock)
    rt = Runtime(db=db, settings=settings, drivers=drivers, clock=clock)
    stop = asyncio.Event()
    worker = asyncio.create_task(Worker(rt).run(stop))
    try:
        project = await ensure_project(
            db, clock, "demo", quotas={"instances": -1, "cores": -1, "ram": -1}
        )
        ctx = RequestContext(project_id=project, user_id="demo")
        svc = ServerService(db, settings, clock)
        sched = settings.scheduler
        console.rule("[bold]canopy demo: a load spike on two simulated clouds")
        console.print(
            f"private: tier 0, 16 vCPUs, free.  public: tier 1, $0.048 per vCPU-hour.\n"
            f"burst threshold {sched.burst_threshold:.0%}, spend cap "
            f"${sched.max_spend_per_hour:.2f}/hour.  Spike: {servers} x {flavor}.\n"
        )
        created = await svc.create(
            ctx,
            CreateServer(
                name="web", flavor=flavor, image="cirros", min_count=servers, max_count=servers
            ),
        )
        rt.wake.set()
        ids = [s.id for s in created]
        await _watch(db, ids, "booting", lambda st: st in TERMINAL)
        await _final_table(db, ids)
        if not keep:
            for sid in ids:
                await svc.delete(ctx, sid)
            rt.wake.set()
            await _watch(db, ids, "deleting", lambda st: st == "DELETED")
            left = await _claims_left(db)
            console.print(
                f"All servers deleted; claims left: {left}; "
                f"remote servers left: {await _remote_left(rt)}"
            )
        else:
            console.print(f"Servers kept. State is in {path}")
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
        for d in drivers.values():
            await d.close()
        await db.dispose()
        if own_dir and not keep:
            shutil.rmtree(path, ignore_errors=True)


async def _watch(db: Database, ids: list[str], what: str, done: Any) -> None:
    progress = Progress(
        TextColumn(f"[bold]{what}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
    )
    task = progress.add_task(what, total=len(ids))
    deadline = time.monotonic() + 120
    with Live(console=console, refresh_per_second=8) as live:
        while True:
            rows, clouds = await _state(db, ids)
            finished = sum(1 for r in rows if done(r.status))
            progress.update(task, completed=finished)
            live.update(Group(_cloud_table(clouds, rows), progress))
            if finished == len(ids) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.15)


async def _state(db: Database, ids: list[str]) -> tuple[list[Server], list[Cloud]]:
    async with db.read() as s:
        rows = list((await s.execute(select(Server).where(Server.id.in_(ids)))).scalars())
        clouds = list((await s.execute(select(Cloud).order_by(Cloud.tier))).scalars())
    return rows, clouds


def _cloud_table(clouds: list[Cloud], rows: list[Server]) -> Table:
    t = Table(title="clouds", expand=False)
    for col in (
        "cloud",
        "tier",
        "scheduling",
        "building",
        "active",
        "vCPUs claimed",
        "utilisation",
        "$/hour",
    ):
        t.add_column(col)
    waiting = sum(1 for r in rows if r.cloud is None and r.status == "BUILD")
    for c in clouds:
        mine = [r for r in rows if r.cloud == c.name]
        util = c.vcpus_claimed / c.vcpus_capacity if c.vcpus_capacity else 0.0
        bar = "█" * round(util * 20) + "░" * (20 - round(util * 20))
        t.add_row(
            c.name,
            str(c.tier),
            str(waiting) if c.tier == 0 else "",
            str(sum(1 for r in mine if r.status == "BUILD")),
            str(sum(1 for r in mine if r.status == "ACTIVE")),
            f"{c.vcpus_claimed}/{c.vcpus_capacity or '∞'}",
            f"{bar} {util:.0%}",
            format_amount(c.spend_per_hour_micros),
        )
    return t


async def _final_table(db: Database, ids: list[str]) -> None:
    async with db.read() as s:
        rows = list(
            (
                await s.execute(
                    select(Server)
                    .where(Server.id.in_(ids))
                    .order_by(Server.created_at, Server.name)
                )
            ).scalars()
        )
        reasons: dict[str, str] = {}
        for p in (await s.execute(select(Placement).order_by(Placement.id))).scalars():
            if p.server_id in reasons or p.cloud is None:
                reasons.setdefault(p.server_id, p.reason)
            reasons[p.server_id] = p.reason
        prices = {
            c.server_id: c.price_per_hour_micros for c in (await s.execute(select(Claim))).scalars()
        }
        tiers = {c.name: c.tier for c in (await s.execute(select(Cloud))).scalars()}
    t = Table(title="where each server went, and why")
    for col in ("server", "cloud", "tier", "status", "$/hour", "why"):
        t.add_column(col, overflow="fold")
    for r in sorted(rows, key=lambda r: int(r.name.rsplit("-", 1)[-1])):
        t.add_row(
            r.name,
            r.cloud or "-",
            str(tiers.get(r.cloud or "", "-")),
            r.status,
            format_amount(prices.get(r.id, 0)),
            reasons.get(r.id, r.fault_message or ""),
        )
    console.print(t)
    total = sum(prices.get(r.id, 0) for r in rows)
    where: dict[str, int] = {}
    for r in rows:
        where[r.cloud or "none"] = where.get(r.cloud or "none", 0) + 1
    console.print(
        "placed: "
        + ", ".join(f"{k}={v}" for k, v in sorted(where.items()))
        + f"   hourly spend: [bold]${format_amount(total)}[/]"
    )


async def _claims_left(db: Database) -> int:
    async with db.read() as s:
        return len(list((await s.execute(select(Claim.id))).scalars()))


async def _remote_left(rt: Runtime) -> int:
    from canopy.providers.sim.driver import SimCompute

    n = 0
    for d in rt.drivers.values():
        if isinstance(d, SimCompute):
            n += len(await d.all_servers())
    return n
