"""No pass of a controller scans a big table, with or without statistics.

An operator who runs `ANALYZE` (or `PRAGMA optimize`) changes SQLite's plans: the
controllers' statements (every one a worker step, a housekeeping pass, a forced full sync
and a webhook delivery send, captured as sent) are asked for their plan with no
statistics, after `ANALYZE` and after a limited `ANALYZE` (what `PRAGMA optimize` runs),
over a big, quiet installation: all its servers on one cloud and in one project (another
cloud and another project empty, the skew that made the fleet's read scan), or spread
evenly. A full scan of a big table fails the test unless plan_sweep.ALLOWED names it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from canopy.bootstrap import ensure_project

from .harness import make_plane
from .plan_sweep import seed_bulk, sqlite_scans, sweep, take_statistics

ROWS = 2000


@pytest.mark.parametrize("clouds", [("private",), ("private", "public")], ids=["skewed", "even"])
async def test_sqlite_no_statement_scans_a_big_table(
    tmp_path: Path, sqlite_template: Path, clouds: tuple[str, ...]
) -> None:
    import shutil

    from tests.notifications.helpers import NOTIFY, Receiver, subscribe

    target = tmp_path / "canopy.db"
    shutil.copy(sqlite_template, target)
    p = await make_plane(
        f"sqlite+aiosqlite:///{target}", tmp_path, overrides={"notifications": NOTIFY}
    )
    receiver = Receiver()
    await receiver.start()
    try:
        sub, _ = await subscribe(p, receiver.url)
        others = [await ensure_project(p.db, p.clock, f"empty-{i}") for i in range(2)]
        # Statistics as an operator could leave them: made while the installation was new
        # (never made again: SQLite does not), and made when it had grown.
        fill = {"project": p.ctx.project_id, "now": p.clock.now(), "clouds": clouds}
        await seed_bulk(p.db, n=20, subscription=sub, **fill)
        stats = {"stale": await take_statistics(p.db)}
        await seed_bulk(p.db, n=ROWS, subscription=sub, first=20, **fill)
        stats["analyze"] = await take_statistics(p.db)
        stats["analyze-limited"] = await take_statistics(p.db, limit=400)
        assert any(r[1] == "ix_servers_cloud_host" for r in stats["analyze-limited"])
        statements = await sweep(p, others)
        assert receiver.got, "a delivery was sent"
        assert len(statements) > 50, len(statements)
        found = await sqlite_scans(p.db, statements, "none", [])
        for how, rows in stats.items():
            found += await sqlite_scans(p.db, statements, how, rows)
        assert not found, "\n".join(found)
    finally:
        await receiver.stop()
        await p.close()
