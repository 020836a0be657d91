"""What a list page sends: how many statements (pinned), and the plans of the status and
exact-name filters, with and without statistics."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from canopy.services.server_queries import ServerQuery
from canopy.store import plain_reads
from canopy.store.models import Server
from tests.controllers.harness import Plane, make_plane

from .test_server_queries import _fill

COLUMNS = [Server.id, Server.name, Server.created_at]


@contextmanager
def _statements(p: Plane, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every statement sent in the block, on the engine and on SQLite's plain reads, but
    the transactions' own BEGIN / COMMIT."""
    seen: list[str] = []

    def record(_c: Any, _cur: Any, sql: str, *_: Any) -> None:
        seen.append(sql)

    original = plain_reads.PlainReads._call

    def call(self: Any, conn: Any, sql: str, params: Any) -> Any:
        seen.append(sql)
        return original(self, conn, sql, params)

    monkeypatch.setattr(plain_reads.PlainReads, "_call", call)
    event.listen(p.db.engine.sync_engine, "before_cursor_execute", record)
    out: list[str] = []
    try:
        yield out
    finally:
        event.remove(p.db.engine.sync_engine, "before_cursor_execute", record)
        monkeypatch.setattr(plain_reads.PlainReads, "_call", original)
    skip = ("BEGIN", "COMMIT", "ROLLBACK", "SET LOCAL", "SAVEPOINT", "RELEASE")
    out.extend(s for s in seen if not s.lstrip().upper().startswith(skip))


async def _page(p: Plane, q: ServerQuery) -> int:
    """One page as the API reads it: SQLite's plain reads where they serve, else rows."""
    rows = p.service.search_plain(p.ctx, q, COLUMNS)
    if rows is None:
        rows = await p.service.search_rows(p.ctx, q, COLUMNS)
    return len(rows)


async def test_a_page_sends_a_pinned_number_of_statements(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = await make_plane(db_url, tmp_path)
    try:
        rows = await _fill(p)
        marker = sorted(rows, key=lambda r: (r.created_at, r.id))[200].id
        sqlite = p.db.is_sqlite
        cases: list[tuple[ServerQuery, int]] = [
            (ServerQuery(limit=50), 1),
            (ServerQuery(limit=50, marker=marker), 2),  # the marker's keys, then the page
            (ServerQuery(limit=50, statuses=frozenset({"ERROR"})), 1),
            (ServerQuery(limit=50, name="^web-42$"), 1),
            # SQLite first asks its trigram index how many names have the text.
            (ServerQuery(limit=50, name="web-42"), 2 if sqlite else 1),
            (ServerQuery(limit=50, name="web-4\\d", marker=marker), 3 if sqlite else 2),
            (ServerQuery(limit=50, name="^.*7$"), 1),
            # A change window's estimate (services/server_walk.py), then the page.
            (ServerQuery(limit=50, changes_since=rows[0].updated_at, deleted=None), 2),
        ]
        await _page(p, ServerQuery(limit=1, name="web-1"))  # the index looked for once
        for q, expected in cases:
            with _statements(p, monkeypatch) as sent:
                await _page(p, q)
            assert len(sent) == expected, (q, sent)
    finally:
        await p.close()


async def _plan(
    p: Plane, q: ServerQuery, stats: bool, monkeypatch: pytest.MonkeyPatch
) -> list[str]:
    with _statements(p, monkeypatch) as sent:
        await p.service.search_rows(p.ctx, q, COLUMNS)
    params: list[Any] = []
    captured: list[tuple[str, Any]] = []

    def grab(_c: Any, _cur: Any, sql: str, parameters: Any, *_: Any) -> None:
        captured.append((sql, parameters))

    event.listen(p.db.engine.sync_engine, "before_cursor_execute", grab)
    try:
        await p.service.search_rows(p.ctx, q, COLUMNS)
    finally:
        event.remove(p.db.engine.sync_engine, "before_cursor_execute", grab)
    sql, params = next((s, a) for s, a in captured if "ORDER BY" in s)
    assert sent  # the page was sent
    async with p.db.engine.connect() as conn:
        if stats:
            await conn.exec_driver_sql("ANALYZE")
        result = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params)
        return [str(r[-1]) for r in result]


@pytest.mark.parametrize("stats", [False, True])
async def test_status_and_exact_name_pages_search_their_index_on_sqlite(
    tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch, stats: bool
) -> None:
    target = tmp_path / "canopy.db"
    shutil.copy(sqlite_template, target)
    p = await make_plane(f"sqlite+aiosqlite:///{target}", tmp_path)
    try:
        await _fill(p)
        status = await _plan(
            p, ServerQuery(limit=50, statuses=frozenset({"ERROR"})), stats, monkeypatch
        )
        # In page order from the status index: no sort, no walk of the project.
        assert status == [
            "SEARCH servers USING INDEX ix_servers_project_status (project_id=? AND status=?)"
        ], status
        exact = await _plan(p, ServerQuery(limit=50, name="^web-42$"), stats, monkeypatch)
        assert exact[0].startswith("SEARCH servers USING INDEX ix_servers_project_name"), exact
    finally:
        await p.close()


async def test_the_status_page_reads_an_index_on_postgresql(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import empty_database

    await empty_database(pg_url)
    p = await make_plane(pg_url, tmp_path)
    try:
        await _fill(p)
        async with p.db.engine.connect() as conn:
            await conn.exec_driver_sql("ANALYZE servers")
        captured: list[tuple[str, Any]] = []

        def grab(_c: Any, _cur: Any, sql: str, parameters: Any, *_: Any) -> None:
            if "ORDER BY" in sql:
                captured.append((sql, parameters))

        event.listen(p.db.engine.sync_engine, "before_cursor_execute", grab)
        try:
            q = ServerQuery(limit=50, statuses=frozenset({"ERROR"}))
            await p.service.search_rows(p.ctx, q, COLUMNS)
        finally:
            event.remove(p.db.engine.sync_engine, "before_cursor_execute", grab)
        [(sql, params)] = captured
        async with p.db.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver: Any = raw.driver_connection
            plan = "\n".join(r[0] for r in await driver.fetch("EXPLAIN " + sql, *params))
        # At this test's size PostgreSQL picks between the project's indexes by its
        # estimate (the status index, or the project's own with a filter when it
        # thinks the project holds a row or two): either way an index, never the table.
        assert "Seq Scan on servers" not in plan, plan
        assert "ix_servers_project" in plan, plan
    finally:
        await p.close()
