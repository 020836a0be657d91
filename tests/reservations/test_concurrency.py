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
from canopy.store.models import Claim
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
