"""Claims and the cloud's usage counters always move together, in one transaction."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from canopy.domain.clock import FakeClock
from canopy.store.claims import add_claim, release_claim
from canopy.store.db import Database
from canopy.store.models import Claim, Cloud

from .helpers import add_servers, server_row


async def _cloud(db: Database, name: str) -> Cloud:
    async with db.read() as s:
        c = await s.get(Cloud, name)
        assert c is not None
        return c


async def _claims(db: Database) -> int:
    async with db.read() as s:
        return int((await s.execute(select(func.count()).select_from(Claim))).scalar_one())


async def test_add_and_release_move_counters_together(seeded: Database, clock: FakeClock) -> None:
    db = seeded
    now = clock.now()
    async with db.session() as s:
        a, b = await add_servers(s, [server_row(now), server_row(now)])
        cloud = await s.get(Cloud, "public", with_for_update=True)
        assert cloud is not None
        add_claim(
            s, cloud, server_id=a, vcpus=2, ram_mb=4096, disk_gb=40, price_per_hour_micros=100_000, now=now
        )
        add_claim(
            s, cloud, server_id=b, vcpus=1, ram_mb=2048, disk_gb=20, price_per_hour_micros=50_000, now=now
        )
    c = await _cloud(db, "public")
    assert (c.vcpus_claimed, c.ram_mb_claimed, c.instances_claimed) == (3, 6144, 2)
    assert c.spend_per_hour_micros == 150_000
    assert await _claims(db) == 2
    other = await _cloud(db, "private")
    assert (other.vcpus_claimed, other.ram_mb_claimed, other.instances_claimed) == (0, 0, 0)

    async with db.session() as s:
        released = await release_claim(s, a)
        assert released is not None
        assert (released.cloud, released.vcpus, released.ram_mb) == ("public", 2, 4096)
    c = await _cloud(db, "public")
    assert (c.vcpus_claimed, c.ram_mb_claimed, c.instances_claimed) == (1, 2048, 1)
    assert c.spend_per_hour_micros == 50_000
    assert await _claims(db) == 1

    # Twice is safe: nothing left to give back, the counters do not move again.
    async with db.session() as s:
        assert await release_claim(s, a) is None
    c = await _cloud(db, "public")
    assert (c.vcpus_claimed, c.ram_mb_claimed, c.instances_claimed) == (1, 2048, 1)

    async with db.session() as s:
        assert await release_claim(s, b) is not None
    c = await _cloud(db, "public")
    assert (c.vcpus_claimed, c.ram_mb_claimed, c.instances_claimed) == (0, 0, 0)
    assert c.spend_per_hour_micros == 0
    assert await _claims(db) == 0


async def test_release_twice_in_one_transaction(seeded: Database, clock: FakeClock) -> None:
    db = seeded
    now = clock.now()
    async with db.session() as s:
        [a] = await add_servers(s, [server_row(now)])
        cloud = await s.get(Cloud, "private")
        assert cloud is not None
        add_claim(
            s, cloud, server_id=a, vcpus=4, ram_mb=8192, disk_gb=0, price_per_hour_micros=0, now=now
        )
    async with db.session() as s:
        assert await release_claim(s, a) is not None
        assert await release_claim(s, a) is None
    c = await _cloud(db, "private")
    assert (c.vcpus_claimed, c.ram_mb_claimed, c.instances_claimed) == (0, 0, 0)


async def test_release_without_a_claim(seeded: Database) -> None:
    async with seeded.session() as s:
        assert await release_claim(s, "no-such-server") is None
    c = await _cloud(seeded, "private")
    assert (c.vcpus_claimed, c.instances_claimed) == (0, 0)


async def test_a_rolled_back_claim_leaves_no_trace(seeded: Database, clock: FakeClock) -> None:
    db = seeded
    now = clock.now()
    async with db.session() as s:
        [a] = await add_servers(s, [server_row(now)])

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with db.session() as s:
            cloud = await s.get(Cloud, "private")
            assert cloud is not None
            add_claim(
                s, cloud, server_id=a, vcpus=4, ram_mb=8192, disk_gb=0, price_per_hour_micros=0, now=now
            )
            await s.flush()
            raise Boom
    c = await _cloud(db, "private")
    assert (c.vcpus_claimed, c.ram_mb_claimed, c.instances_claimed) == (0, 0, 0)
    assert await _claims(db) == 0


async def test_one_claim_per_server(seeded: Database, clock: FakeClock) -> None:
    from sqlalchemy.exc import IntegrityError

    db = seeded
    now = clock.now()
    async with db.session() as s:
        [a] = await add_servers(s, [server_row(now)])
        cloud = await s.get(Cloud, "private")
        assert cloud is not None
        add_claim(s, cloud, server_id=a, vcpus=1, ram_mb=1, disk_gb=0, price_per_hour_micros=0, now=now)
    with pytest.raises(IntegrityError):
        async with db.session() as s:
            cloud = await s.get(Cloud, "public")
            assert cloud is not None
            add_claim(
                s, cloud, server_id=a, vcpus=1, ram_mb=1, disk_gb=0, price_per_hour_micros=0, now=now
            )
    # The failed second claim did not move the other cloud's counters.
    assert (await _cloud(db, "public")).instances_claimed == 0
    assert (await _cloud(db, "private")).instances_claimed == 1
