"""A worker that dies in the middle of lease starts and ends: the next one finishes them.

In-process: the lease loop is stopped dead at its k-th SQL statement (an exception no
handler catches, as a kill leaves a transaction half done), for every k in turn, each
time with the store checked for half-done leases, until a pass gets through. Then with
real processes: `canopy worker` is killed with SIGKILL while leases start and end; every
lease and server converges, each server of an ended lease deleted once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select

from canopy.domain.errors import Conflict
from canopy.domain.states import DesiredState
from canopy.providers.registry import build_drivers
from canopy.providers.sim.driver import SimCompute
from canopy.reservations.service import LeaseService
from canopy.services.servers import CreateServer, ServerService
from canopy.store.claims import usage_at
from canopy.store.db import Database
from canopy.store.models import (
    Claim,
    Cloud,
    InstanceAction,
    Lease,
    LeaseEvent,
    Reservation,
    Server,
)
from tests.controllers.harness import Plane, make_plane
from tests.controllers.procs import WorkerProcess, installed

from .helpers import body, create, retime

ONE = """
[[clouds]]
name = "private"
tier = 0
[clouds.sim]
hosts = 4
host_vcpus = 64
host_ram_mb = 262144
boot_seconds = 1
api_latency_ms = 0
"""


WAIT_SECONDS = 90.0  # for one thing a real worker process does (its inventory, a start)


class Killed(BaseException):
    """The process is gone: nothing after this statement runs, nothing catches it."""


@contextmanager
def dies_at(db: Database, k: int) -> Iterator[None]:
    seen = [0]

    def count(*_: Any) -> None:
        seen[0] += 1
        if seen[0] == k:
            raise Killed(f"killed at statement {k}")

    engine = db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def _whole(p: Plane, ending: str, sids: list[str], starting: list[str]) -> None:
    """No lease is half started or half ended; the counters are what the claims say."""
    async with p.db.read() as s:
        lease = await s.get(Lease, ending)
        assert lease is not None
        servers = list((await s.execute(select(Server).where(Server.id.in_(sids)))).scalars())
        rids = list(
            (
                await s.execute(select(Reservation.id).where(Reservation.lease_id == ending))
            ).scalars()
        )
        claims = await s.scalar(
            select(func.count()).select_from(Claim).where(Claim.reservation_id.in_(rids))
        )
        doomed = {sv.desired_state == DesiredState.DELETED for sv in servers}
        if lease.status == "TERMINATED":
            assert doomed == {True} and claims == 0
        else:
            assert lease.status == "ACTIVE" and doomed == {False} and claims == 1
        rows = (
            await s.execute(
                select(Lease.status, LeaseEvent.status)
                .join(LeaseEvent, LeaseEvent.lease_id == Lease.id)
                .where(Lease.id.in_(starting), LeaseEvent.event_type == "start_lease")
            )
        ).all()
        assert all((ls == "ACTIVE") == (es == "DONE") for ls, es in rows), rows
        # The counters are the claims they count, and a lease's claims are counted iff a
        # committed batch started it: each batch moves them by its own leases' claims.
        cloud = await s.get(Cloud, "private")
        counted = await s.scalar(
            select(func.coalesce(func.sum(Claim.vcpus), 0)).where(
                Claim.cloud == "private", Claim.counted.is_(True)
            )
        )
        assert cloud is not None and cloud.vcpus_claimed == counted
        flags = (
            await s.execute(
                select(Lease.status, Claim.counted)
                .join(Reservation, Reservation.lease_id == Lease.id)
                .join(Claim, Claim.reservation_id == Reservation.id)
                .where(Lease.id.in_(starting))
            )
        ).all()
        assert all((ls == "ACTIVE") == c for ls, c in flags), flags


async def test_a_worker_killed_at_any_statement_of_a_pass_leaves_no_lease_half_done(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=ONE, overrides={"controllers": {"batch_size": 8}})
    try:
        due = p.clock.now() + timedelta(hours=1)
        ending = await create(p, body("ending", "now", due, amount=3))
        await p.worker.leases.run_once()
        async with p.db.read() as s:
            [rid] = (
                await s.execute(select(Reservation.id).where(Reservation.lease_id == ending.id))
            ).scalars()
        sids = await p.create(3, name="in", flavor=rid)
        for _ in range(5):
            await p.step(advance=1)
        starting = [
            (await create(p, body(f"l{i}", due, due + timedelta(hours=1)))).id for i in range(20)
        ]
        p.clock.advance((due - p.clock.now()).total_seconds())
        kills = 0
        for k in range(1, 1000):
            try:
                with dies_at(p.db, k):
                    await p.worker.leases.run_once()
            except Killed:
                kills += 1
                await _whole(p, ending.id, sids, starting)
                continue
            break
        assert kills > 20  # several batches, each cut at each of its statements
        await _whole(p, ending.id, sids, starting)
        async with p.db.read() as s:  # every lease stepped: the counters are what is in use
            cloud = await s.get(Cloud, "private")
            used = (await usage_at(s, ["private"], p.clock.now()))["private"]
            assert cloud is not None and cloud.vcpus_claimed == used.vcpus
        assert await p.worker.leases.run_once() == 0  # nothing left, nothing run twice
        async with p.db.read() as s:
            statuses = list(
                (await s.execute(select(Lease.status).where(Lease.id.in_(starting)))).scalars()
            )
            ended = await s.get(Lease, ending.id)
        assert statuses == ["ACTIVE"] * 20 and ended is not None and ended.status == "TERMINATED"
        await p.run_until(lambda: _gone(p.db, sids))
        remote = await p.sim("private").all_servers()
        assert not [r for r in remote if r.canopy_id in sids]
        assert await _deletes(p.db, sids) == [1, 1, 1]
    finally:
        await p.close()


async def _gone(db: Database, sids: list[str]) -> bool:
    async with db.read() as s:
        q = select(func.count()).where(Server.id.in_(sids), Server.status != "DELETED")
        return int((await s.execute(q)).scalar_one()) == 0


async def _deletes(db: Database, sids: list[str]) -> list[int]:
    """How many delete actions each server got (one each: nothing asked twice)."""
    async with db.read() as s:
        rows = await s.execute(
            select(func.count())
            .where(InstanceAction.server_id.in_(sids), InstanceAction.action == "delete")
            .group_by(InstanceAction.server_id)
        )
        return sorted(int(n) for (n,) in rows)


def _config(tmp_path: Path, db_url: str) -> Path:
    cfg = tmp_path / "canopy.toml"
    cfg.write_text(
        f"""data_dir = "{tmp_path}"
[database]
url = "{db_url}"
[controllers]
lease_seconds = 2.0
poll_seconds = 0.05
sync_seconds = 0.3
batch_size = 16
call_timeout_seconds = 1.0
backoff_base_seconds = 0.1
backoff_max_seconds = 1.0
[[clouds]]
name = "private"
tier = 0
[clouds.sim]
hosts = 4
host_vcpus = 64
host_ram_mb = 262144
boot_seconds = 0.5
api_latency_ms = 20
seed = 1
"""
    )
    return cfg


@pytest.mark.slow
async def test_kill_minus_nine_during_lease_starts_and_ends_converges(
    db_url: str, tmp_path: Path
) -> None:
    cfg = _config(tmp_path, db_url)
    settings, clock, db, ctx = await installed(cfg, "crash")
    servers = ServerService(db, settings, clock)
    svc = LeaseService(settings, clock, servers)
    worker = WorkerProcess(cfg, tmp_path / "worker.log")
    try:
        worker.start()
        far = clock.now().replace(second=0, microsecond=0) + timedelta(days=1)
        # Each wait has its own deadline, generous: they only bound a failure, and a loaded
        # machine can take most of one for the worker's start alone.
        deadline = time.monotonic() + WAIT_SECONDS
        while True:  # until the worker has read the cloud's inventory
            try:
                async with db.session() as s:
                    ending = await svc.create(s, ctx, body("ending", "now", far, amount=4))
                break
            except Conflict:
                assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()[-3000:]
                await asyncio.sleep(0.2)
        deadline = time.monotonic() + WAIT_SECONDS
        while True:  # the worker starts it
            async with db.read() as s:
                row = await s.get(Lease, ending.id)
                rid = await s.scalar(
                    select(Reservation.id).where(Reservation.lease_id == ending.id)
                )
            if row is not None and row.status == "ACTIVE":
                break
            assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()[-3000:]
            await asyncio.sleep(0.2)
        assert rid is not None
        made = await servers.create(
            ctx, CreateServer(name="in", flavor=rid, image="cirros", min_count=4, max_count=4)
        )
        sids = [sv.id for sv in made]
        ids = []
        for i in range(60):
            async with db.session() as s:
                ids.append(
                    (await svc.create(s, ctx, body(f"l{i}", far, far + timedelta(hours=1)))).id
                )
        # Starts over the next 2-6 s, each lease 2 s long; the servers' lease ends among them.
        t0 = clock.now() + timedelta(seconds=2)
        windows = {
            lid: (t0 + timedelta(seconds=i / 15), t0 + timedelta(seconds=2 + i / 15))
            for i, lid in enumerate(ids)
        }
        windows[ending.id] = (ending.start_at, t0 + timedelta(seconds=2))
        await retime(db, windows)
        kills = 0
        for pause in (1.3, 1.1, 1.6, 1.2, 1.4):
            await asyncio.sleep(pause)
            assert worker.alive(), (tmp_path / "worker.log").read_text()[-3000:]
            worker.kill9()
            kills += 1
            worker.start()
        deadline = time.monotonic() + 90
        while True:
            async with db.read() as s:
                statuses = list(
                    (
                        await s.execute(select(Lease.status).where(Lease.id.in_([*ids, ending.id])))
                    ).scalars()
                )
                undone = await s.scalar(
                    select(func.count()).select_from(LeaseEvent).where(LeaseEvent.status != "DONE")
                )
            if statuses == ["TERMINATED"] * 61 and undone == 0 and await _gone(db, sids):
                break
            assert time.monotonic() < deadline, (statuses, undone)
            await asyncio.sleep(0.5)
        assert kills == 5
        drivers = build_drivers(settings, clock)
        try:
            sim = drivers["private"]
            assert isinstance(sim, SimCompute)
            deadline = time.monotonic() + 30
            while [r for r in await sim.all_servers() if r.canopy_id in sids]:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.5)
        finally:
            for d in drivers.values():
                await d.close()
        assert await _deletes(db, sids) == [1, 1, 1, 1]
        async with db.read() as s:
            claims = await s.scalar(
                select(func.count()).select_from(Claim).where(Claim.reservation_id.is_not(None))
            )
            cloud = await s.get(Cloud, "private")
            done = list((await s.execute(select(LeaseEvent))).scalars())
        assert claims == 0 and cloud is not None and cloud.vcpus_claimed == 0
        assert all(e.done_at is not None and e.done_at >= e.time for e in done)
    finally:
        worker.stop()
        await db.dispose()
