""" "Room over [start, end)": a lease is accepted exactly when, at every moment of its
window, what is already claimed plus what it asks for fits the cloud.

Random timelines of claims (servers' open-ended ones and other leases' windows) on one
cloud, each checked against a brute force over every minute; the service decides with one
peak query for all the clouds, and must agree in both directions.
"""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert

from canopy.domain.errors import Conflict
from canopy.store.models import Claim
from tests.controllers.harness import Plane, make_plane

from .helpers import PRIVATE_ONLY, body, leases

HORIZON = 40  # minutes; every window starts and ends on a whole minute inside it
VCPUS, RAM = 8, 16384  # the private cloud of PRIVATE_ONLY
SIZE = (1, 1536)  # one reserved server: vcpus, MB


class Rollback(Exception):
    """Raised to undo an accepted lease: each case starts from its own timeline."""


def _timeline(rng: random.Random) -> list[tuple[int, int | None, int, int]]:
    """Claims as (start, end or None, vcpus, ram_mb), minutes from the origin."""
    out: list[tuple[int, int | None, int, int]] = []
    for _ in range(rng.randint(0, 12)):
        start = rng.randint(0, HORIZON - 1)
        end = None if rng.random() < 0.2 else rng.randint(start + 1, HORIZON)
        out.append((start, end, rng.randint(0, 3), rng.choice([0, 1024, 2048, 4096])))
    return out


def _fits(claims: list[tuple[int, int | None, int, int]], s: int, e: int, n: int) -> bool:
    for t in range(s, e):
        live = [c for c in claims if c[0] <= t and (c[1] is None or t < c[1])]
        if sum(c[2] for c in live) + n * SIZE[0] > VCPUS:
            return False
        if sum(c[3] for c in live) + n * SIZE[1] > RAM:
            return False
    return True


async def _accepted(
    p: Plane, claims: list[tuple[int, int | None, int, int]], s: int, e: int, n: int
) -> bool:
    origin = p.clock.now() + timedelta(hours=1)

    def at(minute: int) -> Any:
        return origin + timedelta(minutes=minute)

    rows = [
        {
            "reservation_id": f"r-{i}",
            "cloud": "private",
            "vcpus": v,
            "ram_mb": r,
            "disk_gb": 0,
            "instances": 1,
            "price_per_hour_micros": 0,
            "starts_at": at(a),
            "ends_at": None if b is None else at(b),
            "created_at": p.clock.now(),
        }
        for i, (a, b, v, r) in enumerate(claims)
    ]
    try:
        async with p.db.session() as session:
            await session.execute(delete(Claim))
            if rows:
                await session.execute(insert(Claim), rows)
            b = body("x", at(s), at(e), amount=n, vcpus=SIZE[0], memory_mb=SIZE[1])
            await leases(p).create(session, p.ctx, b)
            raise Rollback  # accepted; undo it (a refusal undoes itself, as in a request)
    except Rollback:
        return True
    except Conflict:
        return False


async def test_room_over_a_window_matches_a_brute_force(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=PRIVATE_ONLY)
    try:
        seen = {True: 0, False: 0}
        for case in range(80):
            rng = random.Random(case)
            claims = _timeline(rng)
            s = rng.randint(0, HORIZON - 1)
            e = rng.randint(s + 1, HORIZON + 5)
            n = rng.randint(1, 6)
            want = _fits(claims, s, e, n)
            got = await _accepted(p, claims, s, e, n)
            assert got == want, (case, claims, s, e, n)
            seen[got] += 1
        assert min(seen.values()) >= 10, seen  # both answers were exercised
    finally:
        await p.close()
