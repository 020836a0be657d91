"""Claims and the cloud's usage counters always move together, in one transaction."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from canopy.domain.clock import FakeClock
from canopy.domain.money import to_micros
from canopy.store.claims import COUNTERS, add_claim, claim_row, recount, release_claim
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
            s,
            cloud,
            server_id=a,
            vcpus=2,
            ram_mb=4096,
            disk_gb=40,
            price_per_hour_micros=100_000,
            now=now,
        )
        add_claim(
            s,
            cloud,
            server_id=b,
            vcpus=1,
            ram_mb=2048,
            disk_gb=20,
            price_per_hour_micros=50_000,
            now=now,
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
                s,
                cloud,
                server_id=a,
                vcpus=4,
                ram_mb=8192,
                disk_gb=0,
                price_per_hour_micros=0,
                now=now,
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
        add_claim(
            s, cloud, server_id=a, vcpus=1, ram_mb=1, disk_gb=0, price_per_hour_micros=0, now=now
        )
    with pytest.raises(IntegrityError):
        async with db.session() as s:
            cloud = await s.get(Cloud, "public")
            assert cloud is not None
            add_claim(
                s,
                cloud,
                server_id=a,
                vcpus=1,
                ram_mb=1,
                disk_gb=0,
                price_per_hour_micros=0,
                now=now,
            )
    # The failed second claim did not move the other cloud's counters.
    assert (await _cloud(db, "public")).instances_claimed == 0
    assert (await _cloud(db, "private")).instances_claimed == 1


async def test_a_servers_claim_is_now_to_open(seeded: Database, clock: FakeClock) -> None:
    now = clock.now()
    async with seeded.session() as s:
        [a] = await add_servers(s, [server_row(now)])
        cloud = await s.get(Cloud, "private")
        assert cloud is not None
        add_claim(
            s, cloud, server_id=a, vcpus=1, ram_mb=1, disk_gb=0, price_per_hour_micros=0, now=now
        )
    async with seeded.read() as s:
        claim = (await s.execute(select(Claim))).scalar_one()
    assert (claim.server_id, claim.reservation_id) == (a, None)
    assert (claim.starts_at, claim.ends_at) == (now, None)


async def test_a_claim_that_starts_later_is_not_counted_now(
    seeded: Database, clock: FakeClock
) -> None:
    """Counters cache what is in use now: a reservation's future window leaves them alone,
    and `recount` at a moment inside the window counts it."""
    now = clock.now()
    later, end = now + timedelta(hours=1), now + timedelta(hours=3)
    async with seeded.session() as s:
        cloud = await s.get(Cloud, "public")
        assert cloud is not None
        add_claim(
            s,
            cloud,
            reservation_id="lease-1",
            vcpus=4,
            ram_mb=8192,
            disk_gb=0,
            price_per_hour_micros=250_000,
            now=now,
            starts_at=later,
            ends_at=end,
        )
    c = await _cloud(seeded, "public")
    assert (c.vcpus_claimed, c.instances_claimed, c.spend_per_hour_micros) == (0, 0, 0)

    async with seeded.session() as s:
        cloud = await s.get(Cloud, "public")
        assert cloud is not None
        await recount(s, [cloud], later + timedelta(minutes=1))
    c = await _cloud(seeded, "public")
    assert (c.vcpus_claimed, c.ram_mb_claimed, c.instances_claimed) == (4, 8192, 1)
    assert c.spend_per_hour_micros == 250_000

    async with seeded.session() as s:
        cloud = await s.get(Cloud, "public")
        assert cloud is not None
        await recount(s, [cloud], end)  # the window is half-open: over at its end
    c = await _cloud(seeded, "public")
    assert (c.vcpus_claimed, c.instances_claimed, c.spend_per_hour_micros) == (0, 0, 0)


def test_claim_row_refuses_a_claim_without_exactly_one_owner_or_window() -> None:
    cloud = Cloud(name="c", vcpus_claimed=0, ram_mb_claimed=0, instances_claimed=0)
    cloud.spend_per_hour_micros = 0
    kw: dict[str, Any] = {"vcpus": 1, "ram_mb": 1, "disk_gb": 0, "price_per_hour_micros": 0}
    now = FakeClock().now()
    with pytest.raises(ValueError, match="exactly one"):
        claim_row(cloud, now=now, **kw)
    with pytest.raises(ValueError, match="exactly one"):
        claim_row(cloud, server_id="s", reservation_id="r", now=now, **kw)
    with pytest.raises(ValueError, match="empty"):
        claim_row(cloud, reservation_id="r", now=now, starts_at=now, ends_at=now, **kw)
    assert cloud.instances_claimed == 0


@pytest.mark.parametrize("owner", [{}, {"server": True, "reservation_id": "r-1"}])
async def test_the_database_refuses_a_claim_without_exactly_one_owner(
    seeded: Database, clock: FakeClock, owner: dict[str, Any]
) -> None:
    from sqlalchemy.exc import IntegrityError

    now = clock.now()
    async with seeded.session() as s:
        [a] = await add_servers(s, [server_row(now)])
    with pytest.raises(IntegrityError):
        async with seeded.session() as s:
            s.add(
                Claim(
                    server_id=a if owner.get("server") else None,
                    reservation_id=owner.get("reservation_id"),
                    cloud="private",
                    vcpus=1,
                    ram_mb=1,
                    disk_gb=0,
                    instances=1,
                    price_per_hour_micros=0,
                    starts_at=now,
                    created_at=now,
                )
            )
    assert await _claims(seeded) == 0


THIRD_OF_A_TENTH = to_micros(0.1 / 3)  # a price as a driver's float list gives it


def test_a_price_like_a_third_of_a_tenth_is_kept_to_the_micro_unit() -> None:
    assert THIRD_OF_A_TENTH == 33_333
    assert to_micros("0.1") * 3 == to_micros("0.3")  # 0.1 + 0.1 + 0.1 != 0.3 in floats


def test_a_million_claims_and_releases_leave_the_spend_exactly_zero() -> None:
    """The counter arithmetic of claim_row, a million times each way: integers, no drift.
    (The same sum in floats ends about 1e-10 away from zero.) The cloud is a plain object
    with a Cloud's counters: a mapped instance would spend the time in attribute events."""
    cloud: Any = SimpleNamespace(
        name="c", vcpus_claimed=0, ram_mb_claimed=0, instances_claimed=0, spend_per_hour_micros=0
    )
    now = FakeClock().now()
    n = 1_000_000
    rows = [
        claim_row(
            cloud,
            server_id="s",
            vcpus=1,
            ram_mb=2,
            disk_gb=0,
            price_per_hour_micros=THIRD_OF_A_TENTH,
            now=now,
        )
        for _ in range(n)
    ]
    assert cloud.spend_per_hour_micros == n * 33_333
    for row in rows:  # release_claim's update: each counter minus the claim's amount
        for counter, amount in COUNTERS:
            setattr(cloud, counter, getattr(cloud, counter) - row[amount])
    assert (cloud.vcpus_claimed, cloud.ram_mb_claimed, cloud.instances_claimed) == (0, 0, 0)
    assert cloud.spend_per_hour_micros == 0 and type(cloud.spend_per_hour_micros) is int
    floats = 0.0
    for _ in range(n):
        floats += 0.1 / 3
    for _ in range(n):
        floats -= 0.1 / 3
    assert floats != 0.0  # what the float counter used to do


async def test_many_claims_and_releases_in_the_database_leave_the_spend_exactly_zero(
    seeded: Database, clock: FakeClock
) -> None:
    """Placement's bulk claims, then release_claim one by one: the BIGINT counter is 0."""
    now = clock.now()
    n = 600
    async with seeded.session() as s:
        ids = await add_servers(s, [server_row(now) for _ in range(n)])
    for chunk in (ids[: n // 2], ids[n // 2 :]):
        async with seeded.session() as s:
            cloud = await s.get(Cloud, "public", with_for_update=True)
            assert cloud is not None
            rows = [
                claim_row(
                    cloud,
                    server_id=sid,
                    vcpus=1,
                    ram_mb=1024,
                    disk_gb=0,
                    price_per_hour_micros=THIRD_OF_A_TENTH,
                    now=now,
                )
                for sid in chunk
            ]
            await s.execute(insert(Claim), rows)
    c = await _cloud(seeded, "public")
    assert c.spend_per_hour_micros == n * THIRD_OF_A_TENTH
    for i in range(0, n, 100):
        async with seeded.session() as s:
            for sid in ids[i : i + 100]:
                assert await release_claim(s, sid) is not None
    c = await _cloud(seeded, "public")
    assert (c.vcpus_claimed, c.instances_claimed, c.spend_per_hour_micros) == (0, 0, 0)
    assert await _claims(seeded) == 0
