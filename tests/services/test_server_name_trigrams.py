"""`?name=` patterns with a literal read from SQLite's trigram index of names: the same
servers, in the same pages, as the pattern itself gives; the plan starts from the index,
with and without statistics; a literal too common walks the page order instead."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, insert

from canopy.services import server_queries
from canopy.services.server_queries import ServerQuery
from canopy.store.models import Server
from tests.controllers.harness import Plane, make_plane
from tests.store.helpers import server_row

from .test_server_queries import _fill

PATTERNS = [
    "web-12",  # what `openstack server show web-12` sends: web-120..web-129 match too
    "web-4\\d",
    "^web-1.*9$",
    "eb-3",
    "web-1[0-9]+0$",
    "web.*-12",  # two required texts: `web` and `-12`
    "nothing-like-it",
    "b-39",
    "^web-12",  # a prefix: instr(name, 'web-12') = 1 on SQLite
    "^eb-1",
    "web\\-1\\.?",  # escapes: `web-1` is required, the rest is a pattern
]
# Too short for a trigram: read along the page order, with the same answers.
SHORT = ["we", "^w", "-1", "7$"]


def _sql_seen(p: Plane) -> tuple[list[str], Any]:
    seen: list[str] = []

    def record(_c: Any, _cur: Any, sql: str, *_: Any) -> None:
        seen.append(sql)

    event.listen(p.db.engine.sync_engine, "before_cursor_execute", record)
    return seen, record


async def _pages(p: Plane, name: str, limit: int) -> list[str]:
    out: list[str] = []
    marker = None
    while True:
        page = await p.service.search(p.ctx, ServerQuery(name=name, limit=limit, marker=marker))
        out.extend(s.id for s in page)
        if len(page) < limit:
            return out
        marker = page[-1].id


@pytest.mark.parametrize("pattern", PATTERNS + SHORT)
async def test_the_pages_are_the_patterns_own(db_url: str, tmp_path: Path, pattern: str) -> None:
    p = await make_plane(db_url, tmp_path)
    try:
        rows = await _fill(p)
        order = sorted(rows, key=lambda r: (r.created_at, r.id), reverse=True)
        expected = [r.id for r in order if re.search(pattern, r.name)]
        seen, record = _sql_seen(p)
        try:
            assert await _pages(p, pattern, 7) == expected
        finally:
            event.remove(p.db.engine.sync_engine, "before_cursor_execute", record)
        from_index = any("server_name_trigrams MATCH" in sql and "ORDER BY" in sql for sql in seen)
        assert from_index == (p.db.is_sqlite and pattern not in SHORT)
    finally:
        await p.close()


async def test_a_literal_too_common_walks_the_page_order(
    tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server_queries, "TRIGRAM_CANDIDATES", 20)
    target = tmp_path / "canopy.db"
    shutil.copy(sqlite_template, target)
    p = await make_plane(f"sqlite+aiosqlite:///{target}", tmp_path)
    try:
        rows = await _fill(p)
        seen, record = _sql_seen(p)
        try:
            found = await p.service.search(p.ctx, ServerQuery(name="web-1", limit=10))
            rare = await p.service.search(p.ctx, ServerQuery(name="web-39", limit=10))
        finally:
            event.remove(p.db.engine.sync_engine, "before_cursor_execute", record)
        order = sorted(rows, key=lambda r: (r.created_at, r.id), reverse=True)
        assert [s.id for s in found] == [r.id for r in order if "web-1" in r.name][:10]
        assert [s.id for s in rare] == [r.id for r in order if "web-39" in r.name][:10]
        pages = [sql for sql in seen if "ORDER BY" in sql]
        assert len(pages) == 2
        assert "MATCH" not in pages[0] and "instr(" in pages[0]  # 111 names have web-1
        assert "server_name_trigrams MATCH" in pages[1]  # 11 have web-39
    finally:
        await p.close()


@pytest.mark.parametrize("marker", [False, True])
async def test_the_page_starts_from_the_index_with_and_without_statistics(
    tmp_path: Path, sqlite_template: Path, marker: bool
) -> None:
    target = tmp_path / "canopy.db"
    shutil.copy(sqlite_template, target)
    p = await make_plane(f"sqlite+aiosqlite:///{target}", tmp_path)
    try:
        rows = await _fill(p)
        seen: list[tuple[str, Any]] = []

        def record(_c: Any, _cur: Any, sql: str, params: Any, *_: Any) -> None:
            if "ORDER BY" in sql:
                seen.append((sql, params))

        event.listen(p.db.engine.sync_engine, "before_cursor_execute", record)
        try:
            after = rows[-1].id if marker else None
            await p.service.search(p.ctx, ServerQuery(name="web-3", limit=5, marker=after))
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
            assert plan[0].startswith("SEARCH servers USING INDEX sqlite_autoindex_servers_1"), (
                stats,
                plan,
            )
            # The project's range of the index's rowids is FTS5's to seek (`<`, `>`), not
            # a filter on every project's names (store/name_trigrams.py).
            [fts] = [x for x in plan if "VIRTUAL TABLE" in x]
            assert "<" in fts.rsplit(":", 1)[-1] and ">" in fts.rsplit(":", 1)[-1], plan
    finally:
        await p.close()


@pytest.mark.parametrize("pattern", ["^.*7$", "^w", "-7", "^x9"])
async def test_a_pattern_no_index_answers_stops_at_the_time_limit(
    tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch, pattern: str
) -> None:
    """`^.*7$` has no literal, and `^w`, `-7`, `^x9` are shorter than a trigram: the
    project's rows are walked in page order, each tested, up to a page of matches (all
    of them when fewer match: `^x9` none). Past `regex_timeout_seconds` the page stops
    with a 400, as on PostgreSQL, on both of SQLite's read paths; lists without a pattern
    are not limited."""
    from canopy.domain.errors import InvalidRequest
    from canopy.store import regexp
    from canopy.store.models import Server

    target = tmp_path / "canopy.db"
    shutil.copy(sqlite_template, target)
    p = await make_plane(f"sqlite+aiosqlite:///{target}", tmp_path)
    try:
        rows = await _fill(p)
        q = ServerQuery(name=pattern, limit=1000)
        matches = sum(bool(re.search(pattern, r.name)) for r in rows)
        assert len(await p.service.search(p.ctx, q)) == matches
        p.settings.api.regex_timeout_seconds = 1e-9  # past at the first check
        monkeypatch.setattr(regexp, "PROGRESS_STEPS", 100)  # checked within 400 rows
        with pytest.raises(InvalidRequest, match="took longer than 1e-09 s"):
            await p.service.search(p.ctx, q)
        if p.service.db.plain_reads is not None:
            with pytest.raises(InvalidRequest, match="took longer than"):
                p.service.search_plain(p.ctx, q, [Server.id])
            assert len(p.service.search_plain(p.ctx, ServerQuery(), [Server.id]) or []) == 400
        assert len(await p.service.search(p.ctx, ServerQuery())) == len(rows)
    finally:
        await p.close()


async def test_other_projects_names_never_change_a_projects_plan(
    tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 9: whether a project's `?name=` page is read from the index counts that
    project's names only. Another project adding thousands of names with the same text
    changes neither the statements planned nor the page (a tenant learns nothing of them);
    an admin's list of every project sees every project's names, and counts them."""
    from canopy.domain.context import RequestContext

    monkeypatch.setattr(server_queries, "TRIGRAM_CANDIDATES", 50)
    target = tmp_path / "canopy.db"
    shutil.copy(sqlite_template, target)
    p = await make_plane(f"sqlite+aiosqlite:///{target}", tmp_path)
    admin = RequestContext(project_id="admin", roles=frozenset({"admin"}), is_admin_project=True)
    queries = {
        "own": (p.ctx, ServerQuery(name="web-39", limit=10)),  # 11 of its names
        "one project": (
            admin,
            ServerQuery(name="web-39", limit=10, all_projects=True, project_id=p.ctx.project_id),
        ),
        "every project": (admin, ServerQuery(name="web-39", limit=10, all_projects=True)),
    }

    async def plans() -> dict[str, tuple[list[str], list[str]]]:
        out = {}
        for what, (ctx, query) in queries.items():
            seen, record = _sql_seen(p)
            try:
                page = await p.service.search(ctx, query)
            finally:
                event.remove(p.db.engine.sync_engine, "before_cursor_execute", record)
            out[what] = (seen, [s.id for s in page])
        return out

    try:
        await _fill(p)
        await plans()  # the first also reads whether the index is there
        before = await plans()
        assert all("server_name_trigrams MATCH" in sql[-1] for sql, _ in before.values())
        other = [
            server_row(p.clock.now(), project_id="other", flavor_id="1", name=f"web-39-{i}")
            for i in range(2000)
        ]
        values = [{c.key: getattr(r, c.key) for c in Server.__mapper__.column_attrs} for r in other]
        async with p.db.session() as s:
            await s.execute(insert(Server), values)
        after = await plans()
        assert after["own"] == before["own"]
        assert after["one project"] == before["one project"]
        # The admin's list of every project now holds 2,011 candidates: the page order.
        sql, page = after["every project"]
        assert "MATCH" not in sql[-1] and len(page) == 10
    finally:
        await p.close()
