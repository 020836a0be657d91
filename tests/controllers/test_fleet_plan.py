"""The fleet's look at the clouds table finds one live server of each cloud by the cloud's
index, never by walking every live server (the `deleted` index before migration 0027).

With 100,000 servers over 20 clouds, the walk took 1-2 s on the event loop at every pass
(every `sync_seconds`): the list API's p99 went past 700 ms. The statement is captured as
`Fleet._read` sends it and its plan asked of SQLite, with and without statistics.
"""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, insert

from canopy.bootstrap import seed
from canopy.controllers.fleet import Fleet
from canopy.controllers.runtime import Runtime
from canopy.domain.clock import FakeClock
from canopy.domain.states import Phase
from canopy.store.db import Database
from canopy.store.models import Server

from ..store.helpers import server_row, settings

PER_CLOUD = 300


async def _fill(db: Database, clock: FakeClock) -> None:
    """PER_CLOUD steady servers on each cloud, one cloud after the other, so the rows of the
    last cloud come last in (deleted, created_at) order."""
    rows: list[dict[str, Any]] = []
    for k, cloud in enumerate(("private", "public")):
        for i in range(PER_CLOUD):
            at = clock.now() + timedelta(seconds=k * PER_CLOUD + i)
            r = server_row(at, phase=Phase.STEADY, cloud=cloud, remote_id=f"{cloud}-{i}")
            rows.append({c.key: getattr(r, c.key) for c in Server.__mapper__.column_attrs})
    async with db.session() as s:
        await s.execute(insert(Server), rows)


def _capture(db: Database) -> tuple[list[str], Any]:
    seen: list[str] = []

    def _seen(_c: Any, _cur: Any, sql: str, _p: Any, _ctx: Any, _many: bool) -> None:
        if "FROM servers" in sql:
            seen.append(sql)

    return seen, _seen


async def _plan(db: Database, sql: str) -> list[str]:
    async with db.engine.connect() as conn:
        result = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)
        return [str(row[-1]) for row in result if " servers" in str(row[-1])]


@pytest.mark.parametrize("statistics", [False, True])
async def test_fleet_read_searches_each_cloud_by_its_index(
    tmp_path: Path, sqlite_template: Path, statistics: bool
) -> None:
    target = tmp_path / "canopy.db"
    shutil.copy(sqlite_template, target)
    db = Database(f"sqlite+aiosqlite:///{target}")
    clock = FakeClock()
    try:
        conf = settings(str(tmp_path))
        await seed(db, conf, clock)
        await _fill(db, clock)
        if statistics:
            async with db.engine.connect() as conn:
                await conn.exec_driver_sql("ANALYZE")
        rt = Runtime(db=db, settings=conf, drivers={}, clock=clock, worker_id="w")
        seen, listener = _capture(db)
        event.listen(db.engine.sync_engine, "before_cursor_execute", listener)
        try:
            found = await Fleet(rt)._read()
        finally:
            event.remove(db.engine.sync_engine, "before_cursor_execute", listener)
        assert {c.name: c.has_servers for c in found} == {"private": True, "public": True}
        assert len(seen) == 1, seen
        plan = await _plan(db, seen[0])
        assert plan and all("(cloud=?)" in x for x in plan), (seen[0], plan)
        assert not any("deleted=" in x for x in plan), (seen[0], plan)
    finally:
        await db.dispose()
