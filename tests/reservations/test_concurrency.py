"""Concurrent lease creates and ordinary boots on PostgreSQL, from two connection pools
(two processes' worth): no cloud is oversubscribed at any instant, checked at every
minute of every window against the claims."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from canopy.domain.errors import Conflict
from canopy.reservations.service import LeaseService
from canopy.store.db import Database
from canopy.store.models import Claim, Reservation
from tests.conftest import empty_database
from tests.controllers.harness import make_plane

from .helpers import PRIVATE_ONLY, body

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

        async def boots() -> None:
            for _ in range(3):
                await p.create(1, name="vm", flavor="m1.tiny")
                await p.worker.placement.run_once()

        results = await asyncio.gather(
            *(lease(p.db if i % 2 else other, i) for i in range(24)), boots()
        )
        accepted = [r for r in results[:-1] if r]
        assert 0 < len(accepted) < 24  # some fitted, some were refused
        async with p.db.read() as s:
            claims = list((await s.execute(select(Claim))).scalars())
        for minute in range(0, 60):
            at = t0 + timedelta(minutes=minute)
            live = [
                c for c in claims if c.starts_at <= at and (c.ends_at is None or at < c.ends_at)
            ]
            assert sum(c.vcpus for c in live) <= 8, (minute, live)
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
