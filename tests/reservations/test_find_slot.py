"""`find_slot` against the store: the first start answered by the store's peak query
(`first_start`) gives exactly what the sweep (`search` over every claim) gives, on random
stores with claims on odd seconds and open-ended ones, both clouds, and the spend cap."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from canopy.reservations import capacity
from canopy.reservations.find_slot import find_slot, first_start, parse_query, spans_in
from canopy.reservations.slots import SLOT_FLAVOR, search
from canopy.store.claims import Usage
from canopy.store.models import Claim, Cloud
from canopy.store.snapshots import cloud_snapshot
from tests.controllers.harness import Plane, make_plane

from .helpers import CLOUDS

# The plane of the other lease tests, with a spend cap that holds a few burst servers.
CAPPED = CLOUDS.replace("burst_threshold = 1.0", "burst_threshold = 1.0\nmax_spend_per_hour = 0.5")
FAR = timedelta(days=3)


def _claims(now: datetime, rng: random.Random, n: int) -> list[dict[str, Any]]:
    rows = []
    for _ in range(n):
        start = now + timedelta(seconds=rng.randrange(-3600, 2 * 86400))
        v = rng.randint(1, 3)
        public = rng.random() < 0.3
        rows.append(
            {
                "reservation_id": str(uuid.uuid4()),
                "cloud": "public" if public else "private",
                "vcpus": v,
                "ram_mb": v * 1024,
                "disk_gb": 0,
                "instances": 1,
                "price_per_hour_micros": v * 48_000 if public else 0,
                "starts_at": start,
                "ends_at": None
                if rng.random() < 0.02
                else start + timedelta(seconds=rng.randrange(60, 6 * 3600)),
                "created_at": now,
            }
        )
    return rows


async def _swept(p: Plane, body: dict[str, Any]) -> Any:
    """The sweep alone over every claim (no first-start shortcut)."""
    now = p.clock.now()
    async with p.db.read() as s:
        q = parse_query(body, now)
        size = capacity.Size(SLOT_FLAVOR, q.vcpus, q.memory_mb, q.disk_gb)
        offered = await capacity.offers(s, size, None)
        clouds = list((await s.execute(select(Cloud).order_by(Cloud.name))).scalars())
        base = {
            c.name: cloud_snapshot(
                c,
                now,
                Usage(),
                price_per_hour_micros={}
                if c.name not in offered
                else {SLOT_FLAVOR: offered[c.name].price_per_hour_micros},
                images=None,
            )
            for c in clouds
        }
        spans = await spans_in(s, max(q.after, now), q.before)
        shortcut = await first_start(s, base, q, size, p.settings, now)
    return search(base, spans, q, size, p.settings, now), shortcut


async def test_the_first_start_shortcut_answers_as_the_sweep(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=CAPPED)
    try:
        now = p.clock.now()
        rng = random.Random(7)
        async with p.db.session() as s:
            await s.execute(insert(Claim), _claims(now, rng, 80))
        shortcuts = 0
        for _ in range(40):
            after = now + timedelta(seconds=rng.randrange(0, 86400))
            body = {
                "vcpus": rng.choice([1, 2]),
                "memory_mb": 1024,
                "count": rng.choice([1, 2, 4, 8, 12]),
                "duration": f"{rng.randint(10, 600)}m",
                "after": after.strftime("%Y-%m-%d %H:%M"),
                "before": (after + FAR).strftime("%Y-%m-%d %H:%M"),
                "affinity": rng.choice([None, True]),
            }
            want, shortcut = await _swept(p, body)
            async with p.db.read() as s:
                _, _, got = await find_slot(s, p.settings, now, body)
            assert (want.slot is None) == (got.slot is None), body
            if want.slot is not None and got.slot is not None:
                assert (got.slot.start, got.slot.end) == (want.slot.start, want.slot.end), body
                assert got.slot.shares == want.slot.shares, body
            # The shortcut answers exactly when the sweep accepts its first start.
            first = want.slot is not None and want.examined == 1
            assert (shortcut is not None) == first, body
            if shortcut is not None:
                shortcuts += 1
                assert shortcut.slot == want.slot and got == shortcut
        assert 0 < shortcuts < 40, shortcuts  # both ways were taken
    finally:
        await p.close()
