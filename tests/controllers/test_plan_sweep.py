"""No pass of a controller scans a big table, with or without statistics.

An operator who runs `ANALYZE` (or `PRAGMA optimize`) changes SQLite's plans: the
controllers' statements (every one a worker step, a housekeeping pass, a forced full sync,
a read of the clouds table and a webhook delivery send, captured as sent) are asked for
their plan with no statistics, with statistics made while the installation was new (and
never again), after `ANALYZE` and after a limited `ANALYZE` (what `PRAGMA optimize` runs),
over a big, quiet installation: all its servers on one cloud and in one project (another
cloud and other projects empty, the skew that made the fleet's read scan), or spread over
two clouds. A full scan of a big table fails the test unless plan_sweep.ALLOWED names it
(with its reason), and an entry of ALLOWED that no plan needs fails it too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from canopy.bootstrap import ensure_project

from .harness import make_plane
from .plan_sweep import ALLOWED, Allowed, seed_bulk, sqlite_scans, sweep, take_statistics

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
        used: set[Allowed] = set()
        found = await sqlite_scans(p.db, statements, "none", [], used)
        for how, rows in stats.items():
            found += await sqlite_scans(p.db, statements, how, rows, used)
        assert not found, "\n".join(found)
        assert used == set(ALLOWED), f"allowed but never seen: {set(ALLOWED) - used}"
    finally:
        await receiver.stop()
        await p.close()


# The forced full sync's walk of the cloud's rows the listing did not show
# (controllers/sync_read.py `missing`): every row of the cloud is read, in pages, by
# design; PostgreSQL walks the table for the first page when it expects no row to match.
PG_ALLOWED = ("AND servers.remote_recorded_at < $2",)


def _seq_scans(node: dict[str, Any], table: str) -> list[dict[str, Any]]:
    """The Seq Scan nodes on `table` in a PostgreSQL plan (FORMAT JSON)."""
    found = [node] if node.get("Node Type") == "Seq Scan" and node["Relation Name"] == table else []
    for child in node.get("Plans", []):
        found += _seq_scans(child, table)
    return found


async def test_postgres_no_statement_scans_the_servers_for_a_few_rows(
    pg_url: str, tmp_path: Path
) -> None:
    """The same sweep on PostgreSQL, after ANALYZE of the seeded tables (per-value
    statistics: it knows the skew). A Seq Scan on servers is refused where PostgreSQL
    itself expects to keep a small part of the table (a quarter at most): reading most of
    it (a recount of the project that holds every server) may rightly walk the table."""
    from tests.conftest import empty_database

    await empty_database(pg_url)
    p = await make_plane(pg_url, tmp_path)
    try:
        others = [await ensure_project(p.db, p.clock, f"empty-{i}") for i in range(2)]
        fill = {"project": p.ctx.project_id, "now": p.clock.now(), "clouds": ("private",)}
        await seed_bulk(p.db, n=ROWS, **fill)
        async with p.db.engine.connect() as conn:
            await conn.execute(text("ANALYZE"))
            await conn.commit()
        statements = await sweep(p, others)
        assert len(statements) > 40, len(statements)
        found, checked = [], 0
        async with p.db.engine.connect() as conn:
            total = ROWS + 10
            for st in statements:
                folded = " ".join(st.sql.split())
                if "servers" not in folded or any(m in folded for m in PG_ALLOWED):
                    continue
                checked += 1
                result = await conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + st.sql, st.params)
                plan = result.scalar_one()
                doc = plan if isinstance(plan, list) else json.loads(plan)
                for node in _seq_scans(doc[0]["Plan"], "servers"):
                    if node["Plan Rows"] * 4 < total:
                        found.append(f"{node['Plan Rows']} rows: {folded[:300]}")
            await conn.rollback()
        assert checked > 20, checked
        assert not found, "\n".join(found)
    finally:
        await p.close()
