"""Concurrent lease creates and ordinary boots on PostgreSQL, in ONE process: the services
called directly through two connection pools, the boots placed by two worker runtimes
(each with its own pool) on one fake clock. No cloud is oversubscribed at any instant,
checked at every minute of every window against the claims. Two pools give two database
sessions that contend for the same rows, which is what the locks are about; it is not two
processes. The same rule with real processes (`canopy api --workers 2`, two `canopy
worker`, requests over HTTP, the system clock) is test_processes.py."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from canopy.domain.errors import Conflict
from canopy.reservations import host_leases, host_query, host_update
from canopy.reservations.host_leases import host_fields
from canopy.reservations.hosts import HostService
from canopy.reservations.service import LeaseService
from canopy.services.servers import CreateServer, ServerService
from canopy.store.db import Database
from canopy.store.models import Claim, HostAllocation, ReservableHost, Reservation, Server
from tests.conftest import empty_database
from tests.controllers.harness import make_plane

from .helpers import PRIVATE_ONLY, body, second_worker
from .test_host_leases import FOUR_HOSTS, _register, host_body

pytestmark = pytest.mark.postgres


async def test_no_instant_is_oversubscribed(pg_url: str, tmp_path: Path) -> None:
    await empty_database(pg_url)
    p = await make_plane(pg_url, tmp_path, toml=PRIVATE_ONLY)
    other = Database(pg_url)
    try:
        t0 = p.clock.now()
        rng = random.Random(11)

        async def lease(db: Database, i: int) -> bool:
            start = rng.randint(1, 30)
            end = start + rng.randint(1, 20)
            b = body(
                f"l{i}",
                t0 + timedelta(minutes=start),
                t0 + timedelta(minutes=end),
                amount=rng.randint(1, 4),
            )
            try:
                async with db.session() as s:
                    await LeaseService(p.settings, p.clock, p.service).create(s, p.ctx, b)
                return True
            except Conflict:
                return False

        # A second worker: its own runtime and connection pool on the same database.
        second = second_worker(p, other, 12)
        # Two ordinary servers run already: open-ended claims from now on.
        running = await p.create(2, name="running", flavor="m1.tiny")
        await p.worker.placement.run_once()
        # More ordinary boots: asked for through each pool, placed by the two workers while
        # the leases are created (the placements' transactions contend with the leases').
        for w, svc in enumerate((p.service, ServerService(other, p.settings, p.clock))):
            await svc.create(
                p.ctx,
                CreateServer(
                    name=f"vm{w}", flavor="m1.tiny", image="cirros", min_count=3, max_count=3
                ),
            )
        results = await asyncio.gather(
            p.worker.placement.run_once(),
            second.placement.run_once(),
            *(lease(p.db if i % 2 else other, i) for i in range(24)),
        )
        accepted = [r for r in results[2:] if r]
        assert 0 < len(accepted) < 24  # some fitted, some were refused
        async with p.db.read() as s:
            claims = list((await s.execute(select(Claim))).scalars())
        for minute in range(0, 60):
            at = t0 + timedelta(minutes=minute)
            live = [
                c for c in claims if c.starts_at <= at and (c.ends_at is None or at < c.ends_at)
            ]
            assert sum(c.vcpus for c in live) <= 8, (minute, live)
        # The running servers' claims were counted above with the leases'; the boots placed
        # during the creates were too, and those that found no room beside the leases
        # wait for it (in practice the leases, queued first on the clouds' locks, win).
        async with p.db.read() as s:
            rows = list((await s.execute(select(Server))).scalars())
        placed = {sv.id for sv in rows if sv.cloud is not None}
        assert set(running) <= placed, [(sv.name, sv.phase) for sv in rows]
        assert all(sv.phase == "schedule" for sv in rows if sv.cloud is None)
    finally:
        await other.dispose()
        await p.close()


async def test_concurrent_amount_raises_and_creates_never_oversubscribe(
    pg_url: str, tmp_path: Path
) -> None:
    """Leases' amounts raised and lowered from two pools beside new leases: every window
    stays within the cloud at every minute, and what was accepted is what is claimed."""
    await empty_database(pg_url)
    p = await make_plane(pg_url, tmp_path, toml=PRIVATE_ONLY)
    other = Database(pg_url)
    try:
        t0 = p.clock.now()
        svc = LeaseService(p.settings, p.clock, p.service)
        made = []
        for i in range(6):  # 6 leases of 1 over overlapping windows: 6 of 8 vcpus at most
            start = t0 + timedelta(minutes=5 * i)
            async with p.db.session() as s:
                lease = await svc.create(
                    s, p.ctx, body(f"base{i}", start, start + timedelta(minutes=40))
                )
                made.append(lease.id)
        async with p.db.read() as s:
            rid = {r.lease_id: r.id for r in (await s.execute(select(Reservation))).scalars()}
        rng = random.Random(5)

        async def raise_(db: Database, lease_id: str) -> bool:
            change = {"id": rid[lease_id], "amount": rng.randint(1, 4)}
            try:
                async with db.session() as s:
                    await svc.update(s, p.ctx, lease_id, {"reservations": [change]})
                return True
            except Conflict:
                return False

        async def lease(db: Database, i: int) -> bool:
            start = t0 + timedelta(minutes=rng.randint(0, 30))
            try:
                async with db.session() as s:
                    await svc.create(
                        s, p.ctx, body(f"new{i}", start, start + timedelta(minutes=20), amount=2)
                    )
                return True
            except Conflict:
                return False

        jobs = [raise_(p.db if i % 2 else other, made[i % 6]) for i in range(18)]
        jobs += [lease(other if i % 2 else p.db, i) for i in range(6)]
        results = await asyncio.gather(*jobs)
        assert any(results) and not all(results)  # some fitted, some were refused
        async with p.db.read() as s:
            claims = list((await s.execute(select(Claim))).scalars())
            amounts = {r.id: r.amount for r in (await s.execute(select(Reservation))).scalars()}
        held: dict[str, int] = {}
        for c in claims:
            assert c.reservation_id is not None
            held[c.reservation_id] = held.get(c.reservation_id, 0) + c.instances
        assert held == amounts  # each reservation's claim is its amount
        for minute in range(0, 80):
            at = t0 + timedelta(minutes=minute)
            live = [
                c for c in claims if c.starts_at <= at and (c.ends_at is None or at < c.ends_at)
            ]
            assert sum(c.vcpus for c in live) <= 8, (minute, live)
    finally:
        await other.dispose()
        await p.close()


async def test_concurrent_host_leases_changes_and_capabilities_never_share_a_host(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Host lease creates, `min`/`max`/query/date changes and capability changes from two
    pools: no host is ever held by two reservations at one instant, every held host
    matches its reservation's queries, and each holds between its min and max. The time
    between reading which hosts are busy and writing the choice is held open, so the
    transactions overlap there whatever the pools' warmth: only the locks keep them apart."""
    real = host_leases.busy_hosts

    async def slow_busy_hosts(*args: Any, **kw: Any) -> set[int]:
        out = await real(*args, **kw)
        await asyncio.sleep(0.05)
        return out

    monkeypatch.setattr(host_leases, "busy_hosts", slow_busy_hosts)
    monkeypatch.setattr(host_update, "busy_hosts", slow_busy_hosts)
    await empty_database(pg_url)
    p = await make_plane(pg_url, tmp_path, toml=FOUR_HOSTS)
    other = Database(pg_url)
    try:
        hosts = await _register(p, 4)
        async with p.db.session() as s:
            for i, h in enumerate(hosts):
                await HostService(p.clock).update(s, str(h), {"tag": "ab"[i % 2]})
        svc = LeaseService(p.settings, p.clock, p.service)
        t0 = p.clock.now() + timedelta(hours=1)
        made = []
        for i in range(3):  # over one window: everything below contends for the same hosts
            b = host_body(f"base{i}", t0, t0 + timedelta(minutes=30), 1, 1)
            async with p.db.session() as s:
                made.append((await svc.create(s, p.ctx, b)).id)
        async with p.db.read() as s:
            rid = {r.lease_id: r.id for r in (await s.execute(select(Reservation))).scalars()}
        rng = random.Random(7)
        queries = ("", '["=", "$tag", "a"]', '["=", "$tag", "b"]')

        async def warm(db: Database) -> None:
            async with db.read() as s:
                await s.execute(text("SELECT 1"))

        # Both pools' connections open first: a cold pool would let the warm one finish.
        await asyncio.gather(*(warm(db) for db in (p.db, other) for _ in range(8)))

        async def attempt(db: Database, job: Any) -> bool:
            try:
                async with db.session() as s:
                    await job(s)
                return True
            except Conflict:
                return False

        def change(lease_id: str) -> Any:
            low = rng.randint(1, 2)
            c = {"id": rid[lease_id], "min": low, "max": rng.randint(low, 3)}
            c["resource_properties"] = rng.choice(queries)
            b: dict[str, Any] = {"reservations": [c]}
            if rng.random() < 0.5:
                b["prolong_for"] = f"{10 * rng.randint(1, 4)}m"
            return lambda s: svc.update(s, p.ctx, lease_id, b)

        def create_(i: int) -> Any:
            start = t0 + timedelta(minutes=10 * rng.randint(0, 3))
            b = host_body(f"new{i}", start, start + timedelta(minutes=30), 1, rng.randint(1, 2))
            b["reservations"][0]["resource_properties"] = rng.choice(queries)
            return lambda s: svc.create(s, p.ctx, b)

        def tag(h: int) -> Any:
            values = {"values": {"tag": rng.choice("ab")}}
            return lambda s: HostService(p.clock).update(s, str(h), values)

        def grow(lease_id: str) -> Any:
            b = {"reservations": [{"id": rid[lease_id], "max": 4, "resource_properties": ""}]}
            return lambda s: svc.update(s, p.ctx, lease_id, b)

        # First the plainest race: every lease asks for every host at once (once each: a
        # second round would drop a shared host again, hiding the race).
        first = await asyncio.gather(
            *(attempt(other if i % 2 else p.db, grow(made[i])) for i in range(3))
        )
        assert any(first)
        await _hosts_shared_by_nobody(p.db)
        jobs = [change(made[i % 3]) for i in range(18)]
        jobs += [create_(i) for i in range(8)]
        jobs += [tag(hosts[i % 4]) for i in range(8)]
        rng.shuffle(jobs)
        results = await asyncio.gather(
            *(attempt(other if i % 2 else p.db, j) for i, j in enumerate(jobs))
        )
        assert any(results) and not all(results)  # some fitted, some were refused
        await _hosts_shared_by_nobody(p.db)
    finally:
        await other.dispose()
        await p.close()


async def _hosts_shared_by_nobody(db: Database) -> None:
    """No host in two reservations at one instant; every held host matches its
    reservation's queries; each reservation holds between its min and max."""
    async with db.read() as s:
        allocs = list((await s.execute(select(HostAllocation))).scalars())
        res = {r.id: r for r in (await s.execute(select(Reservation))).scalars()}
        by_host = {h.id: h for h in (await s.execute(select(ReservableHost))).scalars()}
    count: dict[str, int] = {}
    for a in allocs:
        r = res[a.reservation_id]
        query = host_query.parse(r.hypervisor_properties, "h") + host_query.parse(
            r.resource_properties, "r"
        )
        assert host_query.matches(query, host_fields(by_host[a.host_id])), (r.id, a.host_id)
        count[r.id] = count.get(r.id, 0) + 1
        for b in allocs:
            if b.id != a.id and b.host_id == a.host_id:
                assert b.end_at <= a.start_at or a.end_at <= b.start_at, (a.id, b.id)
    for r in res.values():
        assert (r.min_hosts or 0) <= count.get(r.id, 0) <= (r.max_hosts or 0) and (
            r.amount == count.get(r.id, 0)
        ), (r.id, r.min_hosts, r.max_hosts, r.amount, count.get(r.id))
