"""Host reservations through the service: no host is ever in two reservations at once,
checked over random windows (and random changes) against a brute force of the free hosts."""

from __future__ import annotations

import itertools
import json
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from canopy.domain.errors import Conflict, InvalidRequest
from canopy.reservations import requests
from canopy.reservations.hosts import HostService
from canopy.store.models import HostAllocation, Lease, ReservableHost, Reservation
from tests.controllers.harness import Plane, make_plane

from .helpers import create, leases, when

FOUR_HOSTS = """
[[clouds]]
name = "private"
tier = 0
[clouds.sim]
hosts = 4
host_vcpus = 4
host_ram_mb = 8192
boot_seconds = 1
api_latency_ms = 0
"""


def host_body(name: str, start: datetime, end: datetime, low: int, high: int) -> dict[str, Any]:
    return {
        "name": name,
        "start_date": when(start),
        "end_date": when(end),
        "reservations": [
            {
                "resource_type": "physical:host",
                "min": low,
                "max": high,
                "hypervisor_properties": "",
                "resource_properties": "",
            }
        ],
        "events": [],
    }


async def _register(p: Plane, n: int) -> list[int]:
    out = []
    async with p.db.session() as s:
        for i in range(1, n + 1):
            out.append((await HostService(p.clock).create(s, {"name": f"private:h{i}"})).id)
    return out


async def _windows(p: Plane) -> dict[int, list[tuple[datetime, datetime, str]]]:
    async with p.db.read() as s:
        rows = (await s.execute(select(HostAllocation))).scalars()
        out: dict[int, list[tuple[datetime, datetime, str]]] = {}
        for a in rows:
            out.setdefault(a.host_id, []).append((a.start_at, a.end_at, a.reservation_id))
        return out


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_no_host_is_held_twice_at_any_instant(db_url: str, tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    p = await make_plane(db_url, tmp_path, toml=FOUR_HOSTS)
    try:
        hosts = await _register(p, 4)
        t0 = p.clock.now() + timedelta(hours=1)
        live: list[str] = []
        for i in range(40):
            if live and rng.random() < 0.2:  # a delete frees its hosts at once
                victim = live.pop(rng.randrange(len(live)))
                async with p.db.session() as s:
                    await leases(p).delete(s, p.ctx, victim)
                continue
            start = t0 + timedelta(minutes=10 * rng.randrange(0, 30))
            end = start + timedelta(minutes=10 * rng.randrange(1, 12))
            low = rng.randint(1, 3)
            high = rng.randint(low, 4)
            # Brute force: the hosts no live allocation holds at any instant of the window.
            held = await _windows(p)
            free = [
                h for h in hosts if all(not (a < end and b > start) for a, b, _ in held.get(h, []))
            ]
            try:
                lease = await create(p, host_body(f"l{i}", start, end, low, high))
            except Conflict as e:
                assert len(free) < low, (free, low, str(e))
                assert await _windows(p) == held  # nothing written
                continue
            assert len(free) >= low
            live.append(lease.id)
            async with p.db.read() as s:
                [res] = (
                    await s.execute(select(Reservation).where(Reservation.lease_id == lease.id))
                ).scalars()
            got = [h for h, ws in (await _windows(p)).items() for _, _, r in ws if r == res.id]
            assert sorted(got) == free[:high]  # as many as it may, in host order
            assert res.amount == len(got)
        # The invariant, over everything still held.
        for ws in (await _windows(p)).values():
            ordered = sorted(ws)
            for (_, end_a, _), (start_b, _, _) in itertools.pairwise(ordered):
                assert end_a <= start_b
        async with p.db.read() as s:
            left = {x.id for x in (await s.execute(select(Lease))).scalars()}
        assert left == set(live)
    finally:
        await p.close()


def test_a_lease_carries_no_servers_into_a_host_reservation() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    b = host_body("x", now + timedelta(hours=1), now + timedelta(hours=2), 1, 1)
    b["servers"] = [{"name": "web", "image": "cirros", "reservation": 0}]
    with pytest.raises(InvalidRequest, match="a physical:host reservation") as e:
        requests.lease_create(b, now)
    assert "--hint reservation=<id>" in str(e.value)


TAGS = ("a", "b")
QUERIES = ("", '["=", "$tag", "a"]', '["!=", "$tag", "a"]', '["=", "$tag", "b"]')


def _matches(query: str, tag: str) -> bool:
    if not query:
        return True
    op, _, value = json.loads(query)
    return (tag == value) == (op == "=")


async def _state(p: Plane) -> tuple[dict[str, Reservation], dict[int, str]]:
    async with p.db.read() as s:
        res = {r.id: r for r in (await s.execute(select(Reservation))).scalars()}
        tags = {h.id: h.extra["tag"] for h in (await s.execute(select(ReservableHost))).scalars()}
    return res, tags


@pytest.mark.parametrize("seed", [4, 5])
async def test_updates_reallocate_as_a_brute_force_says(
    db_url: str, tmp_path: Path, seed: int
) -> None:
    """Random creates, `min`/`max`/query changes, moves and capability changes against a
    brute force of Blazar's rules: kept = held hosts still matching and free over the new
    window (the first `max`), then free matching hosts in id order up to `max`, 409 below
    `min`; a capability a holder names cannot change. No host is ever held twice at once,
    and every held host matches its reservation's query."""
    rng = random.Random(seed)
    p = await make_plane(db_url, tmp_path, toml=FOUR_HOSTS)
    try:
        hosts = await _register(p, 4)
        async with p.db.session() as s:
            for h in hosts:
                await HostService(p.clock).update(s, str(h), {"tag": rng.choice(TAGS)})
        t0 = p.clock.now() + timedelta(hours=1)
        made: list[tuple[str, str]] = []  # (lease id, reservation id)
        windows: dict[str, tuple[datetime, datetime]] = {}
        seen: Counter[str] = Counter()
        for i in range(60):
            held = await _windows(p)
            res, tags = await _state(p)
            roll = rng.random()
            if roll < 0.3 or not made:
                start = t0 + timedelta(minutes=10 * rng.randrange(0, 12))
                end = start + timedelta(minutes=10 * rng.randrange(1, 6))
                b = host_body(f"l{i}", start, end, 1, rng.randint(1, 2))
                b["reservations"][0]["resource_properties"] = rng.choice(QUERIES)
                try:
                    lease = await create(p, b)
                except Conflict:
                    continue
                async with p.db.read() as s:
                    rid = await s.scalar(
                        select(Reservation.id).where(Reservation.lease_id == lease.id)
                    )
                assert rid is not None
                made.append((lease.id, rid))
                windows[lease.id] = (start, end)
                continue
            if roll < 0.45:  # a capability change, refused while a holder names it
                h = rng.choice(hosts)
                tag = rng.choice(TAGS)
                named = tag != tags[h] and any(
                    "$tag" in (res[r].resource_properties or "") for _, _, r in held.get(h, [])
                )
                try:
                    async with p.db.session() as s:
                        await HostService(p.clock).update(s, str(h), {"values": {"tag": tag}})
                    assert not named
                    seen["capability set"] += 1
                except Conflict as e:
                    assert named, str(e)
                    seen["capability refused"] += 1
                    assert (await _state(p))[1] == tags
                continue
            lease_id, rid = rng.choice(made)
            mine = sorted(h for h, ws in held.items() for _, _, x in ws if x == rid)
            change: dict[str, Any] = {"id": rid}
            start, end = windows[lease_id]
            body: dict[str, Any] = {"reservations": [change]}
            if rng.random() < 0.4:
                shift = timedelta(minutes=10 * rng.randrange(-3, 4))
                start, end = (
                    start + shift,
                    end + shift + timedelta(minutes=10 * rng.randrange(0, 3)),
                )
                body.update(start_date=when(start), end_date=when(end))
            low = rng.randint(1, 3)
            high = rng.randint(low, 4)
            query = rng.choice(QUERIES)
            change.update(min=low, max=high, resource_properties=query)
            # Brute force.
            busy = {
                h
                for h, ws in held.items()
                for a, b_, x in ws
                if x != rid and a < end and b_ > start
            }
            fits = [h for h in hosts if _matches(query, tags[h]) and h not in busy]
            kept = [h for h in mine if h in fits][:high]
            extra = [h for h in fits if h not in mine]
            expect = None
            if len(kept) + len(extra) >= low or len(kept) >= high:
                expect = sorted(kept + extra[: max(high - len(kept), 0)])
            try:
                async with p.db.session() as s:
                    await leases(p).update(s, p.ctx, lease_id, body)
            except Conflict:
                assert expect is None, (mine, kept, extra, low, high)
                assert await _windows(p) == held
                seen["update refused"] += 1
                continue
            assert expect is not None, (mine, kept, extra, low, high)
            windows[lease_id] = (start, end)
            got = sorted(h for h, ws in (await _windows(p)).items() for _, _, x in ws if x == rid)
            assert got == expect
            after = (await _state(p))[0][rid]
            assert (after.min_hosts, after.max_hosts, after.amount) == (low, high, len(got))
            seen["update swapped" if set(mine) - set(got) else "update kept"] += 1
        assert set(seen) == {
            "capability set",
            "capability refused",
            "update refused",
            "update swapped",
            "update kept",
        }, seen
        # The invariants, over everything still held.
        res, tags = await _state(p)
        for h, ws in (await _windows(p)).items():
            for a, b_, rid in ws:
                assert _matches(res[rid].resource_properties, tags[h])
                assert (a, b_) == windows[res[rid].lease_id]
            for (_, end_a, _), (start_b, _, _) in itertools.pairwise(sorted(ws)):
                assert end_a <= start_b
    finally:
        await p.close()
