"""Leases through the service: placed and claimed over their window at create, all or
nothing; names unique per project; another project's lease is not found."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from canopy.domain.context import RequestContext
from canopy.domain.errors import Conflict, InvalidRequest, NotFound
from canopy.store.models import Claim, Cloud, Flavor, LeaseEvent, Reservation
from tests.controllers.harness import make_plane

from .helpers import CLOUDS, PRIVATE_ONLY, body, create, leases


async def test_a_lease_claims_its_capacity_over_its_window(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        t0 = p.clock.now()
        start, end = t0 + timedelta(hours=1), t0 + timedelta(hours=3)
        lease = await create(p, body("class", start, end, amount=3, vcpus=2, memory_mb=2048))
        assert lease.status == "PENDING"
        async with p.db.read() as s:
            [res] = (await s.execute(select(Reservation))).scalars()
            claims = list((await s.execute(select(Claim))).scalars())
            flavor = await s.get(Flavor, res.id)
            events = {e.event_type: e.time for e in (await s.execute(select(LeaseEvent))).scalars()}
            private = await s.get(Cloud, "private")
        assert [(c.cloud, c.instances, c.vcpus, c.ram_mb) for c in claims] == [
            ("private", 3, 6, 6144)
        ]
        assert all(c.reservation_id == res.id and c.server_id is None for c in claims)
        assert (claims[0].starts_at, claims[0].ends_at) == (start, end)
        assert res.placement[0]["cloud"] == "private" and "tier 0" in res.placement[0]["reason"]
        assert flavor is not None and not flavor.is_public and flavor.vcpus == 2
        assert events == {
            "start_lease": start,
            "before_end_lease": end - timedelta(hours=1),
            "end_lease": end,
        }
        # Not in use yet: the counters (what is in use now) do not move.
        assert private is not None and private.vcpus_claimed == 0
    finally:
        await p.close()


async def test_what_private_cannot_hold_bursts(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        t0 = p.clock.now()
        await create(
            p,
            body(
                "big",
                t0 + timedelta(hours=1),
                t0 + timedelta(hours=2),
                amount=6,
                vcpus=2,
                memory_mb=2048,
            ),
        )
        async with p.db.read() as s:
            [res] = (await s.execute(select(Reservation))).scalars()
        assert [(x["cloud"], x["amount"]) for x in res.placement] == [
            ("private", 4),
            ("public", 2),
        ]
        assert "burst" in res.placement[1]["reason"]
    finally:
        await p.close()


async def test_a_lease_that_fits_nowhere_is_refused_whole(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=PRIVATE_ONLY)
    try:
        t0 = p.clock.now()
        window = (t0 + timedelta(hours=1), t0 + timedelta(hours=2))
        await create(p, body("a", *window, amount=6))
        with pytest.raises(Conflict, match=r"filter capacity removed every cloud") as e:
            await create(p, body("b", *window, amount=3))
        assert "2 of 3 would fit" in str(e.value)
        async with p.db.read() as s:  # nothing of "b" was kept
            assert await s.scalar(select(func.count()).select_from(Reservation)) == 1
            assert await s.scalar(select(func.sum(Claim.instances))) == 6
        # Another window is free: the same lease fits there.
        later = (window[1], window[1] + timedelta(hours=1))
        await create(p, body("b", *later, amount=8))
    finally:
        await p.close()


async def test_an_ordinary_server_never_takes_a_future_lease_s_capacity(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        t0 = p.clock.now()
        # Every private vcpu is reserved an hour from now; now private is empty.
        await create(p, body("all", t0 + timedelta(hours=1), t0 + timedelta(hours=2), amount=8))
        [sid] = await p.create(1, name="now", flavor="m1.small")
        await p.worker.placement.run_once()
        server = await p.service.get(p.ctx, sid)
        assert server.cloud == "public"  # a server's claim is open-ended: it would collide
    finally:
        await p.close()


async def test_a_lease_never_takes_what_a_running_server_holds(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=PRIVATE_ONLY)
    try:
        t0 = p.clock.now()
        await p.create(1, name="now", flavor="m1.small")  # 1 vcpu, from now on
        await p.worker.placement.run_once()
        later = (t0 + timedelta(days=5), t0 + timedelta(days=6))
        with pytest.raises(Conflict, match="7 of 8 would fit"):
            await create(p, body("more", *later, amount=8))
        await create(p, body("fits", *later, amount=7))
    finally:
        await p.close()


async def test_names_are_unique_per_project_and_leases_private(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        t0 = p.clock.now()
        b = body("same", t0 + timedelta(hours=1), t0 + timedelta(hours=2))
        lease = await create(p, b)
        with pytest.raises(Conflict, match="already exists"):
            await create(p, b)
        other = RequestContext(project_id="other", user_id="u2")
        await create(p, b, other)  # another project may use the name
        async with p.db.read() as s:
            with pytest.raises(NotFound):
                await leases(p).get(s, other, lease.id)
            assert [x.name for x in await leases(p).list(s, other)] == ["same"]
            admin = RequestContext(
                project_id="admin", roles=frozenset({"admin"}), is_admin_project=True
            )
            assert (await leases(p).get(s, admin, lease.id)).id == lease.id
    finally:
        await p.close()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"resource_type": "physical:host"}, "Missing parameter min"),
        ({"resource_type": "gpu"}, "Unknown resource_type"),
        ({"amount": 0}, "amount must be between 1"),
        ({"vcpus": "two"}, "vcpus must be a whole number"),
        ({"affinity": "maybe"}, "affinity must be True, False or None"),
        ({"resource_properties": '["=", "$gpu", "True"]'}, "not supported yet"),
    ],
)
async def test_bad_reservations_are_400_and_change_nothing(
    db_url: str, tmp_path: Path, change: dict[str, object], message: str
) -> None:
    p = await make_plane(db_url, tmp_path, toml=PRIVATE_ONLY)
    try:
        t0 = p.clock.now()
        b = body("x", t0 + timedelta(hours=1), t0 + timedelta(hours=2))
        b["reservations"][0].update(change)
        with pytest.raises(InvalidRequest, match=message):
            await create(p, b)
        async with p.db.read() as s:
            assert await s.scalar(select(func.count()).select_from(Claim)) == 0
    finally:
        await p.close()


async def test_dates_are_checked(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=PRIVATE_ONLY)
    try:
        t0 = p.clock.now()
        with pytest.raises(InvalidRequest, match="End date must be later"):
            await create(p, body("x", t0 + timedelta(hours=2), t0 + timedelta(hours=1)))
        with pytest.raises(InvalidRequest, match="Start date must be later"):
            await create(p, body("x", t0 - timedelta(hours=2), t0 + timedelta(hours=1)))
        b = body("x", t0, t0 + timedelta(hours=1))
        b["start_date"] = "tomorrow"
        with pytest.raises(InvalidRequest, match="is not a date"):
            await create(p, b)
        lease = await create(p, body("now", "now", t0 + timedelta(hours=1)))
        assert lease.start_at == t0.replace(microsecond=0)
    finally:
        await p.close()


async def test_moving_a_lease_keeps_its_capacity_or_changes_nothing(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=PRIVATE_ONLY)
    try:
        t0 = p.clock.now()
        h = timedelta(hours=1)
        a = await create(p, body("a", t0 + h, t0 + 2 * h, amount=5))
        await create(p, body("b", t0 + 3 * h, t0 + 4 * h, amount=5))
        svc = leases(p)
        async with p.db.session() as s:  # prolong into b's window: 5 + 5 > 8
            with pytest.raises(Conflict, match="Not enough resources"):
                await svc.update(
                    s, p.ctx, a.id, {"end_date": (t0 + 4 * h).strftime("%Y-%m-%d %H:%M")}
                )
        async with p.db.session() as s:
            moved = await svc.update(s, p.ctx, a.id, {"prolong_for": "1h", "name": "a2"})
            assert (moved.end_at, moved.name) == (t0 + 3 * h, "a2")
        async with p.db.read() as s:
            [claim] = (await s.execute(select(Claim).where(Claim.starts_at == t0 + h))).scalars()
            end = await s.scalar(
                select(LeaseEvent.time).where(
                    LeaseEvent.lease_id == a.id, LeaseEvent.event_type == "end_lease"
                )
            )
        assert claim.ends_at == t0 + 3 * h and end == t0 + 3 * h
    finally:
        await p.close()
