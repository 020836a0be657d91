"""A `changes-since` page walks the page order when most rows changed, and reads the
change window's range when few did: the same rows either way, each plan pinned."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, insert

from canopy.services.server_queries import ServerQuery
from canopy.store.models import Server
from tests.controllers.harness import Plane, make_plane
from tests.store.helpers import server_row

ROWS = 3000
TOUCHED = 20  # the oldest rows, changed recently


async def _fill(p: Plane, rows: int = ROWS, others: int = 0) -> tuple[datetime, datetime]:
    """`rows` servers of the plane's project created a second apart (every third one
    deleted), the TOUCHED oldest updated after the newest was created. Returns a time
    before everything and the time only the touched ones changed since."""
    base = p.clock.now()
    touched_at = base + timedelta(seconds=rows + 60)
    values: list[dict[str, Any]] = []
    for i in range(rows):
        r = server_row(
            base + timedelta(seconds=i // 2),  # ties, broken by the id
            project_id=p.ctx.project_id,
            flavor_id="1",
            sid=f"00000000-0000-4000-8000-{i:012d}",
            deleted=i % 3 == 0,
        )
        if i < TOUCHED:
            r.updated_at = touched_at
        values.append({c.key: getattr(r, c.key) for c in Server.__mapper__.column_attrs})
        for k in range(others):  # other projects' rows: this project is a part of the table
            o = server_row(r.created_at, project_id=f"other-{k}", flavor_id="1")
            values.append({c.key: getattr(o, c.key) for c in Server.__mapper__.column_attrs})
    async with p.db.session() as s:
        await s.execute(insert(Server), values)
    return base - timedelta(days=1), touched_at - timedelta(seconds=1)


def _order(rows: list[Server], desc: bool) -> list[str]:
    return [r.id for r in sorted(rows, key=lambda r: (r.created_at, r.id), reverse=desc)]


async def _pages(p: Plane, query: ServerQuery) -> list[str]:
    ids: list[str] = []
    marker = None
    while True:
        page = await p.service.search(p.ctx, ServerQuery(**{**_fields(query), "marker": marker}))
        if not page:
            return ids
        ids += [sv.id for sv in page]
        marker = page[-1].id


def _fields(q: ServerQuery) -> dict[str, Any]:
    return {f: getattr(q, f) for f in ServerQuery.__dataclass_fields__}


@pytest.mark.parametrize("desc", [True, False])
async def test_pages_are_the_same_rows_whichever_plan_reads_them(
    db_url: str, tmp_path: Path, desc: bool
) -> None:
    p = await make_plane(db_url, tmp_path)
    try:
        past, recent = await _fill(p, rows=300)
        everything = list(await p.service.search(p.ctx, ServerQuery(deleted=None, limit=None)))
        sort = (("created_at", desc),)
        for since, deleted in ((past, None), (past, False), (recent, None), (recent, True)):
            want = [
                r
                for r in everything
                if r.updated_at >= since and (deleted is None or r.deleted is deleted)
            ]
            q = ServerQuery(changes_since=since, deleted=deleted, sort=sort, limit=7)
            assert await _pages(p, q) == _order(want, desc), (since, deleted)
        assert len(await _pages(p, ServerQuery(changes_since=past, deleted=None))) == 300
    finally:
        await p.close()


async def _statements(p: Plane, query: ServerQuery) -> list[tuple[str, Any]]:
    """The SELECTs on servers one page sends (the estimate, then the page)."""
    seen: list[tuple[str, Any]] = []

    def record(_c: Any, _cur: Any, sql: str, params: Any, *_: Any) -> None:
        if sql.lstrip().upper().startswith("SELECT") and "FROM servers" in sql:
            seen.append((sql, params))

    event.listen(p.db.engine.sync_engine, "before_cursor_execute", record)
    try:
        await p.service.search(p.ctx, query)
    finally:
        event.remove(p.db.engine.sync_engine, "before_cursor_execute", record)
    return seen


async def _plan(p: Plane, sql: str, params: Any) -> str:
    sqlite = p.db.is_sqlite
    prefix = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN (FORMAT JSON) "
    async with p.db.engine.connect() as conn:
        result = await conn.exec_driver_sql(prefix + sql, params)
        if sqlite:
            return "\n".join(str(r[-1]) for r in result)
        return json.dumps(result.scalar_one())


@pytest.mark.parametrize("statistics", [False, True])
@pytest.mark.parametrize("deleted", [None, False])
async def test_plans_follow_the_estimate_with_and_without_statistics(
    db_url: str, tmp_path: Path, sqlite_template: Path, statistics: bool, deleted: bool | None
) -> None:
    if db_url.startswith("sqlite"):  # a fresh copy: statistics must not leak between runs
        target = tmp_path / "walk.db"
        shutil.copy(sqlite_template, target)
        db_url = f"sqlite+aiosqlite:///{target}"
    p = await make_plane(db_url, tmp_path)
    try:
        past, recent = await _fill(p, others=2)
        sqlite = p.db.is_sqlite
        if statistics:  # on PostgreSQL as autovacuum leaves it: statistics, visibility map
            async with p.db.engine.connect() as conn:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.exec_driver_sql("ANALYZE" if sqlite else "VACUUM ANALYZE servers")

        # Everything changed since: the walk, stopped after a page; no sort of the matches.
        dense = ServerQuery(changes_since=past, deleted=deleted, limit=100)
        estimate, page = await _statements(p, dense)
        plan = await _plan(p, *estimate)
        if sqlite:  # the window's count up to a page, then the walk's sample: indexes only
            assert "COVERING INDEX ix_servers_project_updated" in plan, plan
            assert "COVERING INDEX ix_servers_project_order" in plan, plan
        elif statistics:  # index-only, or the (deleted, created_at) index: never the table
            assert "Seq Scan" not in plan, plan
        plan = await _plan(p, *page)
        assert "Seq Scan" not in plan and "SCAN servers" not in plan, plan
        if sqlite:  # in (created_at, id) order from an index: nothing sorted. A sort of
            # the ties ("RIGHT PART OF ORDER BY") under the updated_at filter made SQLite
            # walk the whole project past the LIMIT (migration 0027).
            assert "TEMP B-TREE" not in plan, plan
            walks = ("ix_servers_project_order (project_id=?)", "ix_servers_project_created")
            assert any(x in plan for x in walks), plan
        elif statistics:  # a walk in order, stopped by the limit: no sort of every match
            assert '"Node Type": "Sort"' not in plan, plan

        # Only the oldest few changed: the change window's range, its matches sorted;
        # fewer than a page (the window's count says so), or more than a page but none
        # near the start of the walk (its sample says so).
        for limit in (100, 5):
            sparse = ServerQuery(changes_since=recent, deleted=deleted, limit=limit)
            found = await p.service.search(p.ctx, sparse)
            assert 0 < len(found) <= min(limit, TOUCHED)
            _, page = await _statements(p, sparse)
            await _range(p, page, sqlite=sqlite, statistics=statistics)
    finally:
        await p.close()


async def _range(p: Plane, page: tuple[str, Any], *, sqlite: bool, statistics: bool) -> None:
    """`page` reads the change window's range and sorts it."""
    plan = await _plan(p, *page)
    assert "Seq Scan" not in plan and "SCAN servers" not in plan, plan
    if sqlite or statistics:
        assert "ix_servers_project_updated" in plan or "ix_servers_updated" in plan, plan
        assert "ix_servers_project_order" not in plan, plan
    else:
        # PostgreSQL with no statistics at all believes the table nearly empty (until
        # autovacuum's first ANALYZE) and may take any index of the project: still a
        # search of the change window, its matches sorted, never a walk in page order.
        assert '"Sort"' in plan and "updated_at >=" in plan, plan


async def test_other_filters_and_orders_keep_their_plan(db_url: str, tmp_path: Path) -> None:
    """A changes-since list sorted by name, or filtered by status, sends no estimate."""
    p = await make_plane(db_url, tmp_path)
    try:
        past, _ = await _fill(p, rows=30)
        for q in (
            ServerQuery(changes_since=past, deleted=None, sort=(("name", False),), limit=5),
            ServerQuery(changes_since=past, deleted=None, statuses=frozenset({"BUILD"}), limit=5),
            ServerQuery(changes_since=past, deleted=None, limit=None),
        ):
            sent = await _statements(p, q)
            assert len(sent) == 1 and "count(" not in sent[0][0].lower(), sent
    finally:
        await p.close()


def test_the_apis_default_order_may_walk_and_a_mixed_one_may_not() -> None:
    from canopy.services.server_walk import walkable

    shape = (("project",), ("deleted", False), ("since",), ("before",))
    assert walkable(shape, (("created_at", True), ("id", True)))  # what Nova's defaults give
    assert walkable(shape, (("created_at", False),))
    assert not walkable(shape, (("created_at", True), ("id", False)))
    assert not walkable(shape, (("updated_at", True),))
    assert not walkable((("since",),), (("created_at", True),))  # every project's
    assert not walkable((*shape, ("statuses",)), (("created_at", True),))
