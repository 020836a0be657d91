"""Host reservations through the service: no host is ever in two reservations at once,
checked over random windows against a brute-force count of the free hosts."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from canopy.domain.errors import Conflict, InvalidRequest
from canopy.reservations import requests
from canopy.reservations.hosts import HostService
from canopy.store.models import HostAllocation, Lease, Reservation
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
