"""The boot lead is the p95 of the cloud's recent boots (nearest rank), not their slowest:
one boot far slower than the rest does not move it; boots older than a week, or past the
`boot_history` most recent, are not counted."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import update

from canopy.reservations.ready import boot_p95, lead_seconds
from canopy.store.models import Server
from tests.controllers.harness import make_plane

from .test_ready import PRIVATE


async def test_the_p95_is_the_nearest_rank_not_the_slowest(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=PRIVATE)
    try:
        now = p.clock.now()
        ids = await p.create(42, name="booted")
        # 40 recent boots of 11..50 s, one of them 600 s instead (an outlier), and two
        # from last month that took an hour.
        took = {sid: float(11 + i) for i, sid in enumerate(ids[:40])}
        took[ids[7]] = 600.0
        async with p.db.session() as s:
            for i, sid in enumerate(ids):
                made = now - timedelta(minutes=50 - i)
                seconds = took.get(sid, 3600.0)
                if sid not in took:
                    made = now - timedelta(days=30)
                await s.execute(
                    update(Server)
                    .where(Server.id == sid)
                    .values(
                        cloud="private",
                        created_at=made,
                        launched_at=made + timedelta(seconds=seconds),
                    )
                )
        async with p.db.read() as s:
            p95 = await boot_p95(s, ["private"], now, history=100)
            last_ten = await boot_p95(s, ["private"], now, history=10)
            elsewhere = await boot_p95(s, ["public"], now, history=100)
        # Sorted: 11..50 without 18, then 600; the 38th of 40 (ceil(0.95 * 40)) is 49.
        assert p95 == 49.0
        assert last_ten == 50.0  # the ten most recent: 41..50 s, nearest rank 10 of 10
        assert elsewhere is None
        assert lead_seconds(p95, p.settings) == 49.0 + 5.0  # plus the margin
        assert lead_seconds(None, p.settings) == 20.0 + 5.0  # no history: the default
    finally:
        await p.close()
