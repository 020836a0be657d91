"""Changing a reservation's amount or size on a lease update (`lease set --reservation
id=<rid>,amount=N`): more servers are placed by the create's policy over the window and
claimed, or refused with nothing changed; fewer give back burst capacity first and never
go below the servers running in an ACTIVE lease."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from canopy.domain.errors import Conflict, InvalidRequest
from canopy.store.models import Claim, Cloud, Flavor, FlavorMapping, Lease, Reservation
from tests.controllers.harness import Plane, make_plane

from .helpers import CLOUDS, PRIVATE_ONLY, body, create, leases

H = timedelta(hours=1)


async def _set(p: Plane, lease_id: str, *changes: dict[str, Any], **fields: Any) -> Lease:
    async with p.db.session() as s:
        return await leases(p).update(s, p.ctx, lease_id, {"reservations": list(changes), **fields})


async def _state(p: Plane) -> tuple[list[Reservation], list[tuple[str, int, int]]]:
    async with p.db.read() as s:
        res = list((await s.execute(select(Reservation).order_by(Reservation.id))).scalars())
        claims = [
            (c.cloud, c.instances, c.vcpus)
            for c in (
                await s.execute(select(Claim).order_by(Claim.cloud, Claim.starts_at))
            ).scalars()
        ]
    return res, claims


async def test_more_servers_are_claimed_private_first_then_burst(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        t0 = p.clock.now()
        lease = await create(p, body("l", t0 + H, t0 + 2 * H, amount=2, vcpus=2, memory_mb=2048))
        [res], _ = await _state(p)
        await _set(p, lease.id, {"id": res.id, "amount": 6})
        [res], claims = await _state(p)
        assert res.amount == 6
        assert [(x["cloud"], x["amount"]) for x in res.placement] == [("private", 4), ("public", 2)]
        assert "burst" in res.placement[1]["reason"]
        assert claims == [("private", 4, 8), ("public", 2, 4)]
        async with p.db.read() as s:  # the reservation's flavor now runs on public too
            mapped = set(
                (
                    await s.execute(
                        select(FlavorMapping.cloud).where(FlavorMapping.flavor_id == res.id)
                    )
                ).scalars()
            )
        assert mapped == {"private", "public"}
        # Fewer: the burst goes back first.
        await _set(p, lease.id, {"id": res.id, "amount": 3})
        [res], claims = await _state(p)
        assert [(x["cloud"], x["amount"]) for x in res.placement] == [("private", 3)]
        assert claims == [("private", 3, 6)]
    finally:
        await p.close()


async def test_no_room_is_refused_naming_the_filter_and_changes_nothing(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=PRIVATE_ONLY)
    try:
        t0 = p.clock.now()
        await create(p, body("other", t0 + H, t0 + 2 * H, amount=5))
        lease = await create(p, body("l", t0 + H, t0 + 2 * H, amount=2))
        rid = (await _state(p))[0]
        mine = next(r for r in rid if r.lease_id == lease.id)
        with pytest.raises(Conflict, match=r"cannot grow from 2 to 4.*1 of 2 would fit") as e:
            await _set(p, lease.id, {"id": mine.id, "amount": 4}, name="renamed")
        assert "filter capacity removed every cloud" in str(e.value)
        res, claims = await _state(p)
        assert sorted(r.amount for r in res) == [2, 5]
        assert sorted(claims) == [("private", 2, 2), ("private", 5, 5)]
        async with p.db.read() as s:
            still = await s.get(Lease, lease.id)
        assert still is not None and still.name == "l"
        await _set(p, lease.id, {"id": mine.id, "amount": 3})  # the last vcpu: fits
        assert sorted(r.amount for r in (await _state(p))[0]) == [3, 5]
    finally:
        await p.close()


async def test_an_amount_and_new_dates_are_checked_together(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=PRIVATE_ONLY)
    try:
        t0 = p.clock.now()
        lease = await create(p, body("l", t0 + H, t0 + 2 * H, amount=4))
        await create(p, body("later", t0 + 3 * H, t0 + 4 * H, amount=6))
        [res, *_] = [r for r in (await _state(p))[0] if r.lease_id == lease.id]
        # 6 servers fit until the other lease starts, not beside it.
        with pytest.raises(Conflict):
            await _set(p, lease.id, {"id": res.id, "amount": 6}, prolong_for="2h")
        await _set(p, lease.id, {"id": res.id, "amount": 6}, prolong_for="1h")
        async with p.db.read() as s:
            claim = await s.scalar(select(Claim).where(Claim.reservation_id == res.id))
        assert claim is not None and (claim.instances, claim.ends_at) == (6, t0 + 3 * H)
    finally:
        await p.close()


async def test_active_lease_grows_but_keeps_its_running_servers(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=PRIVATE_ONLY)
    try:
        t0 = p.clock.now()
        lease = await create(p, body("l", t0 + timedelta(minutes=1), t0 + 2 * H, amount=2))
        p.clock.advance(60)
        assert await p.worker.leases.run_once() == 1
        [res], _ = await _state(p)
        await p.create(2, name="in", flavor=res.id)
        await p.worker.placement.run_once()
        await _set(p, lease.id, {"id": res.id, "amount": 5})
        async with p.db.read() as s:
            private = await s.get(Cloud, "private")
        assert private is not None and private.vcpus_claimed == 5  # in use now: counted
        [sid] = await p.create(1, name="third", flavor=res.id)  # the new slot is usable
        await p.worker.placement.run_once()
        with pytest.raises(Conflict, match="has 3 servers in it: its amount cannot go below 3"):
            await _set(p, lease.id, {"id": res.id, "amount": 2})
        with pytest.raises(Conflict, match="only accepts to update amount"):
            await _set(p, lease.id, {"id": res.id, "vcpus": 2})
        await _set(p, lease.id, {"id": res.id, "amount": 3})
        async with p.db.read() as s:
            private = await s.get(Cloud, "private")
            [res] = (await s.execute(select(Reservation))).scalars()
        assert res.amount == 3 and private is not None and private.vcpus_claimed == 3
        assert sid
    finally:
        await p.close()


async def test_a_new_size_is_placed_afresh_and_the_flavor_follows(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        t0 = p.clock.now()
        lease = await create(p, body("l", t0 + H, t0 + 2 * H, amount=2))
        [res], _ = await _state(p)
        await _set(p, lease.id, {"id": res.id, "vcpus": 4, "memory_mb": 4096, "amount": 3})
        [res], claims = await _state(p)
        assert (res.amount, res.vcpus, res.memory_mb) == (3, 4, 4096)
        assert claims == [("private", 2, 8), ("public", 1, 4)]
        async with p.db.read() as s:
            flavor = await s.get(Flavor, res.id)
        assert flavor is not None and (flavor.vcpus, flavor.ram_mb) == (4, 4096)
        with pytest.raises(Conflict, match="cannot hold 3 servers of 64 vcpus"):
            await _set(p, lease.id, {"id": res.id, "vcpus": 64})
        assert (await _state(p))[1] == claims
    finally:
        await p.close()


async def test_an_affine_reservation_grows_only_on_its_cloud(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        t0 = p.clock.now()
        lease = await create(p, body("l", t0 + H, t0 + 2 * H, amount=6, affinity="True"))
        [res], _ = await _state(p)
        assert [x["cloud"] for x in res.placement] == ["private"]
        with pytest.raises(Conflict, match="only on private"):
            await _set(p, lease.id, {"id": res.id, "amount": 9})
        await _set(p, lease.id, {"id": res.id, "amount": 8})
        [res], claims = await _state(p)
        assert claims == [("private", 8, 8)]
    finally:
        await p.close()


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"amount": 3}, InvalidRequest, "Invalid reservation IDs are: nope"),
        ({"amount": 0, "id": None}, InvalidRequest, "Missing parameter reservation ID"),
        ({"amount": 0}, InvalidRequest, "amount must be between 1"),
        ({"amount": "many"}, InvalidRequest, "amount must be a whole number"),
        ({"amount": "²"}, InvalidRequest, "amount must be a whole number"),  # isdigit() says yes
        ({"amount": "\u0661"}, InvalidRequest, "amount must be a whole number"),  # Arabic 1
        ({"vcpus": "9" * 5000}, InvalidRequest, "vcpus must be a whole number"),
        ({"min": 1}, InvalidRequest, "it has no min"),
        ({"network_id": "n"}, InvalidRequest, "'network_id' cannot be updated"),
        ({"affinity": "True"}, InvalidRequest, "affinity cannot be changed"),
        ({"resource_type": "flavor:instance"}, InvalidRequest, "resource_type cannot"),
        ({"resource_properties": '["=", "$a", "1"]'}, InvalidRequest, "not supported"),
    ],
)
async def test_bad_changes_are_400_and_change_nothing(
    db_url: str, tmp_path: Path, change: dict[str, Any], error: type[Exception], message: str
) -> None:
    p = await make_plane(db_url, tmp_path, toml=PRIVATE_ONLY)
    try:
        t0 = p.clock.now()
        lease = await create(p, body("l", t0 + H, t0 + 2 * H, amount=2))
        [res], before = await _state(p)
        entry = {"id": "nope" if change.get("amount") == 3 else res.id, **change}
        if entry["id"] is None:
            del entry["id"]
        with pytest.raises(error, match=message):
            await _set(p, lease.id, entry)
        assert (await _state(p))[1] == before
        async with p.db.read() as s:
            assert await s.scalar(select(func.sum(Claim.instances))) == 2
    finally:
        await p.close()


async def test_a_flavor_reservation_changes_its_amount_only(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=PRIVATE_ONLY)
    try:
        t0 = p.clock.now()
        b = body("l", t0 + H, t0 + 2 * H)
        b["reservations"] = [
            {"resource_type": "flavor:instance", "flavor_id": "m1.tiny", "amount": 1}
        ]
        lease = await create(p, b)
        [res], _ = await _state(p)
        with pytest.raises(InvalidRequest, match="only its amount can be updated"):
            await _set(p, lease.id, {"id": res.id, "vcpus": 2})
        await _set(p, lease.id, {"id": res.id, "amount": 3})
        [res], claims = await _state(p)
        assert res.amount == 3 and claims == [("private", 3, 3)]
    finally:
        await p.close()
