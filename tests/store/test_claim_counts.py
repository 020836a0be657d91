"""The cloud counters move by the claims a step adds, drops or flips, and housekeeping's
repair adds a drift computed from one snapshot, keeping what committed after it."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from canopy.domain.clock import FakeClock
from canopy.store import claim_counts
from canopy.store.claims import add_claim, usage_at
from canopy.store.db import Database
from canopy.store.models import Claim, Cloud

from .helpers import add_servers, server_row


async def _counters(db: Database, name: str = "public") -> tuple[int, int, int, int]:
    async with db.read() as s:
        c = await s.get(Cloud, name)
        assert c is not None
        return (c.vcpus_claimed, c.ram_mb_claimed, c.instances_claimed, c.spend_per_hour_micros)


async def _counted(db: Database, name: str = "public") -> tuple[int, int, int, int]:
    """What the cloud's counted claims add up to (what its counters must say)."""
    async with db.read() as s:
        row = (
            await s.execute(
                select(
                    *(
                        func.coalesce(func.sum(a), 0)
                        for a in (
                            Claim.vcpus,
                            Claim.ram_mb,
                            Claim.instances,
                            Claim.price_per_hour_micros,
                        )
                    )
                ).where(Claim.cloud == name, Claim.counted.is_(True))
            )
        ).one()
        return (int(row[0]), int(row[1]), int(row[2]), int(row[3]))


async def _reserve(
    db: Database, rid: str, now: datetime, start: datetime, end: datetime, vcpus: int = 4
) -> None:
    async with db.session() as s:
        cloud = await s.get(Cloud, "public", with_for_update=True)
        assert cloud is not None
        add_claim(
            s,
            cloud,
            reservation_id=rid,
            vcpus=vcpus,
            ram_mb=1024 * vcpus,
            disk_gb=0,
            price_per_hour_micros=1000 * vcpus,
            now=now,
            starts_at=start,
            ends_at=end,
        )


async def _server_claim(db: Database, now: datetime, vcpus: int = 2) -> None:
    async with db.session() as s:
        [sid] = await add_servers(s, [server_row(now)])
        cloud = await s.get(Cloud, "public", with_for_update=True)
        assert cloud is not None
        add_claim(
            s,
            cloud,
            server_id=sid,
            vcpus=vcpus,
            ram_mb=1024 * vcpus,
            disk_gb=0,
            price_per_hour_micros=1000 * vcpus,
            now=now,
        )


async def _settle(db: Database, rids: list[str], at: datetime) -> None:
    async with db.session() as s:
        await claim_counts.settle_and_apply(s, rids, at)


async def test_settle_counts_a_window_once_it_opens_and_stops_once_it_is_over(
    seeded: Database, clock: FakeClock
) -> None:
    db, now = seeded, clock.now()
    start, end = now + timedelta(hours=1), now + timedelta(hours=2)
    await _reserve(db, "r1", now, start, end)
    await _settle(db, ["r1"], now)  # not started: nothing to count
    assert await _counters(db) == (0, 0, 0, 0)
    await _settle(db, ["r1"], start)
    assert await _counters(db) == (4, 4096, 1, 4000)
    await _settle(db, ["r1"], start + timedelta(minutes=1))  # again: nothing moves twice
    assert await _counters(db) == (4, 4096, 1, 4000)
    await _settle(db, ["r1"], end)  # half-open: over at its end
    assert await _counters(db) == (0, 0, 0, 0)


async def test_settle_touches_only_the_reservations_it_is_given(
    seeded: Database, clock: FakeClock
) -> None:
    """A step pays for its own claims: another reservation in use is left to its step."""
    db, now = seeded, clock.now()
    await _reserve(db, "mine", now, now + timedelta(hours=1), now + timedelta(hours=2), 4)
    await _reserve(db, "other", now, now + timedelta(hours=1), now + timedelta(hours=2), 8)
    await _settle(db, ["mine"], now + timedelta(hours=1))
    assert (await _counters(db))[0] == 4
    async with db.read() as s:
        used = (await usage_at(s, ["public"], now + timedelta(hours=1)))["public"]
    assert used.vcpus == 12  # in use, but "other" is counted by its own step


async def test_drop_gives_back_only_what_was_counted(seeded: Database, clock: FakeClock) -> None:
    db, now = seeded, clock.now()
    await _reserve(db, "now", now, now, now + timedelta(hours=1), 2)
    await _reserve(db, "later", now, now + timedelta(hours=1), now + timedelta(hours=2), 8)
    assert (await _counters(db))[0] == 2
    async with db.session() as s:
        moved = await claim_counts.drop(s, Claim.reservation_id.in_(["now", "later"]))
        await claim_counts.apply(s, moved)
    assert moved.of("public").vcpus == -2
    assert await _counters(db) == (0, 0, 0, 0)


async def test_a_repair_racing_a_create_repairs_the_drift_and_keeps_the_create(
    seeded: Database, clock: FakeClock
) -> None:
    db, now = seeded, clock.now()
    await _server_claim(db, now, vcpus=2)
    async with db.session() as s:  # a drift, as a bug or a hand edit could leave
        await s.execute(update(Cloud).where(Cloud.name == "public").values(vcpus_claimed=50))
    async with db.read() as s:  # the repair's snapshot...
        [drift] = await claim_counts.drifts(s)
    assert (drift.cloud, drift.by) == ("public", [-48, 0, 0, 0])
    await _server_claim(db, now, vcpus=3)  # ...then a create commits before its write
    async with db.session() as s:
        assert await claim_counts.fix(s, drift)
    assert await _counters(db) == await _counted(db) == (5, 5120, 2, 5000)
    async with db.session() as s:  # the same snapshot again: fenced, nothing applied twice
        assert not await claim_counts.fix(s, drift)
    assert await _counters(db) == (5, 5120, 2, 5000)
    assert await claim_counts.repair(db) == []  # nothing left to repair


async def test_concurrent_creates_and_lease_starts_keep_the_counters_exact(
    seeded: Database, clock: FakeClock
) -> None:
    """Creates and several steps settling the same reservations at once (on PostgreSQL,
    in parallel transactions): each claim is counted exactly once."""
    db, now = seeded, clock.now()
    start = now + timedelta(minutes=5)
    rids = [f"r{i}" for i in range(6)]
    for rid in rids:
        await _reserve(db, rid, now, start, start + timedelta(hours=1), 1)
    jobs = [_server_claim(db, now, vcpus=1) for _ in range(12)]
    jobs += [_settle(db, rids, start) for _ in range(4)]
    jobs += [_settle(db, [rid], start) for rid in rids]
    await asyncio.gather(*jobs)
    assert await _counters(db) == await _counted(db)
    assert (await _counters(db))[:3] == (18, 18 * 1024, 18)
    async with db.read() as s:
        assert await claim_counts.drifts(s) == []
