"""Keyset pages: exactly the rows after the marker, and deep pages by an index range."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, insert

from canopy.domain.context import RequestContext
from canopy.services.regex_literals import exact_literal
from canopy.services.server_queries import ServerQuery
from canopy.store.models import Server
from tests.controllers.harness import Plane, make_plane
from tests.store.helpers import server_row

ROWS = 400


async def _fill(p: Plane) -> list[Server]:
    """ROWS servers of the plane's project; created_at repeats in runs of 3 (ties)."""
    base = p.clock.now()
    rows = [
        server_row(
            base + timedelta(seconds=i // 3),
            project_id=p.ctx.project_id,
            flavor_id="1",
            sid=f"00000000-0000-4000-8000-{i:012d}",
            name=f"web-{i}",
        )
        for i in range(ROWS)
    ]
    values = [{c.key: getattr(r, c.key) for c in Server.__mapper__.column_attrs} for r in rows]
    async with p.db.session() as s:
        await s.execute(insert(Server), values)
    return rows


@pytest.mark.parametrize(
    "sort", [[("created_at", True)], [("created_at", False)], [("name", False)]]
)
async def test_pages_after_a_marker_are_exactly_the_next_rows(
    db_url: str, tmp_path: Path, sort: tuple[tuple[str, bool], ...]
) -> None:
    p = await make_plane(db_url, tmp_path)
    try:
        await _fill(p)
        everything = await p.service.search(p.ctx, ServerQuery(sort=sort, deleted=False))
        assert len(everything) == ROWS
        walked: list[str] = []
        marker = None
        while True:
            q = ServerQuery(sort=sort, deleted=False, limit=7, marker=marker)
            page = await p.service.search(p.ctx, q)
            if not page:
                break
            walked += [sv.id for sv in page]
            marker = page[-1].id
        assert walked == [sv.id for sv in everything]
    finally:
        await p.close()


async def test_a_deep_page_is_an_index_range_on_sqlite(
    tmp_path: Path, sqlite_template: Path
) -> None:
    import shutil

    target = tmp_path / "canopy.db"
    shutil.copy(sqlite_template, target)
    p = await make_plane(f"sqlite+aiosqlite:///{target}", tmp_path)
    try:
        rows = await _fill(p)
        seen: list[tuple[str, Any]] = []

        def record(_c: Any, _cur: Any, sql: str, params: Any, *_: Any) -> None:
            if "ORDER BY servers.created_at DESC" in sql:
                seen.append((sql, params))

        event.listen(p.db.engine.sync_engine, "before_cursor_execute", record)
        try:
            ctx = RequestContext(project_id=p.ctx.project_id, user_id="u1")
            q = ServerQuery(deleted=False, limit=10, marker=rows[100].id)
            await p.service.search(ctx, q)
        finally:
            event.remove(p.db.engine.sync_engine, "before_cursor_execute", record)
        [(sql, params)] = seen
        for stats in (False, True):
            async with p.db.engine.connect() as conn:
                if stats:
                    await conn.exec_driver_sql("ANALYZE")
                plan = [
                    str(r[-1])
                    for r in await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params)
                ]
            # The project's index, entered at the marker's created_at: a range, not a walk.
            assert any("ix_servers_project_created" in x and "created_at<" in x for x in plan), plan
    finally:
        await p.close()


@pytest.mark.parametrize(
    ("pattern", "literal"),
    [
        ("^web-42$", "web-42"),
        ("^web\\.4$", "web.4"),
        ("web-42", None),  # unanchored: any name containing it
        ("^web-4", None),  # a prefix
        ("^web.4$", None),
        ("^a|b$", None),
        ("^w\\d$", None),
        ("^x$$", None),
    ],
)
def test_only_an_anchored_literal_is_an_exact_name(pattern: str, literal: str | None) -> None:
    from canopy.services import regex

    assert exact_literal(regex.portable("name", pattern)) == literal


async def test_an_exact_name_is_answered_by_the_name_index(
    tmp_path: Path, sqlite_template: Path
) -> None:
    import shutil

    target = tmp_path / "canopy.db"
    shutil.copy(sqlite_template, target)
    p = await make_plane(f"sqlite+aiosqlite:///{target}", tmp_path)
    try:
        rows = await _fill(p)
        seen: list[tuple[str, Any]] = []

        def record(_c: Any, _cur: Any, sql: str, params: Any, *_: Any) -> None:
            if "REGEXP" in sql:
                seen.append((sql, params))

        event.listen(p.db.engine.sync_engine, "before_cursor_execute", record)
        try:
            found = await p.service.search(p.ctx, ServerQuery(name="^web-4$"))
            contains = await p.service.search(p.ctx, ServerQuery(name="web-4"))
        finally:
            event.remove(p.db.engine.sync_engine, "before_cursor_execute", record)
        # The regex semantics are unchanged: exactly web-4 when anchored, any name
        # containing it when not.
        assert [sv.id for sv in found] == [rows[4].id]
        assert {sv.name for sv in contains} == {r.name for r in rows if "web-4" in r.name}
        sql, params = seen[0]
        for stats in (False, True):
            async with p.db.engine.connect() as conn:
                if stats:
                    await conn.exec_driver_sql("ANALYZE")
                plan = [
                    str(r[-1])
                    for r in await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params)
                ]
            assert any("ix_servers_project_name" in x and "name=?" in x for x in plan), plan
    finally:
        await p.close()


@pytest.mark.parametrize(
    "pattern", ["web-4", "^web-3", "eb-1\\d$", "web-\\d{2}$", "b-(?:1|2)0", "^.*7$", "-|9"]
)
async def test_name_patterns_answer_as_re2_does(db_url: str, tmp_path: Path, pattern: str) -> None:
    """With or without a pre-filter (SQLite takes a literal each match must contain),
    on either database, the names found are exactly those RE2 finds."""
    from canopy.services import regex
    from canopy.store.regexp import search

    p = await make_plane(db_url, tmp_path)
    try:
        rows = await _fill(p)
        found = await p.service.search(p.ctx, ServerQuery(name=pattern))
        canonical = regex.portable("name", pattern)
        assert {sv.name for sv in found} == {r.name for r in rows if search(canonical, r.name)}
    finally:
        await p.close()


async def test_an_unanchored_name_tests_a_literal_before_the_pattern_on_sqlite(
    tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`?name=web-4` on SQLite, its literal in more names than the trigram index is asked
    for (test_server_name_trigrams): `instr(name, 'web-4')` first, RE2 only where it
    holds, and the plan stays on the project's index with and without statistics."""
    import shutil

    from canopy.services import server_queries

    monkeypatch.setattr(server_queries, "TRIGRAM_CANDIDATES", 10)

    target = tmp_path / "canopy.db"
    shutil.copy(sqlite_template, target)
    p = await make_plane(f"sqlite+aiosqlite:///{target}", tmp_path)
    try:
        await _fill(p)
        seen: list[tuple[str, Any]] = []

        def record(_c: Any, _cur: Any, sql: str, params: Any, *_: Any) -> None:
            if "REGEXP" in sql:
                seen.append((sql, params))

        event.listen(p.db.engine.sync_engine, "before_cursor_execute", record)
        try:
            await p.service.search(p.ctx, ServerQuery(name="web-4\\d"))
        finally:
            event.remove(p.db.engine.sync_engine, "before_cursor_execute", record)
        [(sql, params)] = seen
        assert "CASE WHEN (instr(servers.name, ?) > ?) THEN servers.name REGEXP ?" in sql, sql
        assert "web-4" in params and "web-4[0-9]" in params
        for stats in (False, True):
            async with p.db.engine.connect() as conn:
                if stats:
                    await conn.exec_driver_sql("ANALYZE")
                plan = [
                    str(r[-1])
                    for r in await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params)
                ]
            assert any("ix_servers_project_created" in x for x in plan), plan
            assert not any(x.startswith("SCAN servers") for x in plan), plan
    finally:
        await p.close()


@pytest.mark.parametrize("deleted", [None, False])
async def test_changes_since_is_a_range_of_the_project_updated_index_on_sqlite(
    tmp_path: Path, sqlite_template: Path, deleted: bool | None
) -> None:
    """`changes-since` (with `deleted` named or not) reads the project's rows changed
    since, by the (project_id, updated_at) index, with and without statistics: never a
    walk of the whole project in page order."""
    import shutil

    target = tmp_path / "canopy.db"
    shutil.copy(sqlite_template, target)
    p = await make_plane(f"sqlite+aiosqlite:///{target}", tmp_path)
    try:
        rows = await _fill(p)
        since = rows[-10].updated_at
        seen: list[tuple[str, Any]] = []

        def record(_c: Any, _cur: Any, sql: str, params: Any, *_: Any) -> None:
            if "ORDER BY +servers.created_at DESC" in sql:  # the page, not the estimate
                seen.append((sql, params))

        event.listen(p.db.engine.sync_engine, "before_cursor_execute", record)
        try:
            q = ServerQuery(changes_since=since, deleted=deleted, limit=100)
            found = await p.service.search(p.ctx, q)
        finally:
            event.remove(p.db.engine.sync_engine, "before_cursor_execute", record)
        expected = [r for r in rows if r.updated_at >= since]
        assert 10 <= len(expected) < 100
        assert {sv.id for sv in found} == {r.id for r in expected}
        [(sql, params)] = seen
        for stats in (False, True):
            async with p.db.engine.connect() as conn:
                if stats:
                    await conn.exec_driver_sql("ANALYZE")
                plan = [
                    str(r[-1])
                    for r in await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params)
                ]
            assert any("ix_servers_project_updated" in x and "updated_at>" in x for x in plan), (
                stats,
                plan,
            )
    finally:
        await p.close()
