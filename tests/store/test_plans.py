"""The controllers' queries search the phase index, with and without statistics.

A table where nearly every server is at rest, a few in working phases: the statements the
controllers really send (captured while they run a pass) must search `ix_servers_phase`,
never scan the table or walk a cloud's rows, before and after `ANALYZE` / `PRAGMA
optimize`. Each plan is asked of the database itself (SQLite's EXPLAIN QUERY PLAN,
PostgreSQL's EXPLAIN).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, insert, text

from canopy.controllers.listing import converging
from canopy.controllers.placement import PlacementController
from canopy.controllers.power import PowerController
from canopy.controllers.provisioning import ProvisioningController
from canopy.controllers.runtime import Runtime
from canopy.domain.clock import FakeClock
from canopy.domain.states import Phase
from canopy.store.db import Database
from canopy.store.leases import due, lease_rows
from canopy.store.models import Server
from canopy.store.own_usage import own_on_cloud
from canopy.store.plans import rare, scarce, unindexed

from .helpers import server_row, settings

AT_REST = 3000


async def _fill(db: Database, clock: FakeClock) -> None:
    """AT_REST steady servers on `private`, and one in each working phase."""
    now = clock.now()
    rows: list[dict[str, Any]] = []
    for i in range(AT_REST):
        r = server_row(now, phase=Phase.STEADY, cloud="private", remote_id=f"r-{i}")
        rows.append({c.key: getattr(r, c.key) for c in Server.__mapper__.column_attrs})
    async with db.session() as s:
        await s.execute(insert(Server), rows)
        for phase in (Phase.SCHEDULE, Phase.CREATE, Phase.CONVERGE, Phase.POWER):
            s.add(server_row(now + timedelta(seconds=1), phase=phase, cloud="private"))


def _servers_plan(lines: list[str]) -> list[str]:
    return [x for x in lines if " servers" in x]


async def _sqlite_plans(db: Database, statements: list[tuple[str, Any]]) -> list[list[str]]:
    plans = []
    async with db.engine.connect() as conn:
        for sql, params in statements:
            result = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params)
            plans.append(_servers_plan([str(row[-1]) for row in result]))
    return plans


async def _controller_statements(db: Database, clock: FakeClock, tmp: Path) -> list[Any]:
    """Every SELECT on servers the controllers send to find their work, as sent."""
    seen: list[tuple[str, Any]] = []

    def _seen(_c: Any, _cur: Any, sql: str, params: Any, _ctx: Any, _many: bool) -> None:
        if sql.lstrip().upper().startswith("SELECT") and "FROM servers" in sql:
            seen.append((sql, params))

    rt = Runtime(db=db, settings=settings(str(tmp)), drivers={}, clock=clock, worker_id="w")
    now = clock.now()
    event.listen(db.engine.sync_engine, "before_cursor_execute", _seen)
    try:
        for ctrl in (ProvisioningController(rt), PowerController(rt)):
            async with db.read() as s:
                await s.execute(ctrl.count_query(now, now))
            async with db.session() as s:
                where = [*ctrl.pending(), unindexed(Server.cloud) == "private", due(Server, now)]
                await lease_rows(
                    s,
                    Server,
                    where=where,
                    worker="w",
                    now=now,
                    lease_seconds=10,
                    limit=50,
                    order_by=ctrl.order_by,
                )
        async with db.read() as s:
            await s.execute(converging("private"))
        await PlacementController(rt).run_once()
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", _seen)
    return seen


async def _share_statements(db: Database, clock: FakeClock) -> list[tuple[str, Any]]:
    """The statements of the inventory's own-use read (store/own_usage.py), as sent."""
    seen: list[tuple[str, Any]] = []

    def _seen(_c: Any, _cur: Any, sql: str, params: Any, _ctx: Any, _many: bool) -> None:
        if sql.lstrip().upper().startswith("SELECT") and "sum(" in sql.lower():
            seen.append((sql, params))

    event.listen(db.engine.sync_engine, "before_cursor_execute", _seen)
    try:
        async with db.read() as s:
            await own_on_cloud(s, "private", clock.now())
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", _seen)
    return seen


@pytest.mark.parametrize("statistics", [False, True])
async def test_sqlite_the_inventory_share_reads_only_the_moving_and_reserved_rows(
    tmp_path: Path, sqlite_template: Path, statistics: bool
) -> None:
    """Its three sums search the phase index, the claims' reservation index and the
    servers' reservation index: never a scan, never every row of the cloud (0.8 s at
    100,000 servers on SQLite, each inventory pass, when it walked the cloud's claims)."""
    async with _filled_sqlite(tmp_path, sqlite_template, statistics) as db:
        statements = await _share_statements(db, FakeClock())
        assert len(statements) == 3
        wanted = ("ix_servers_phase", "ix_claims_reservation_id", "ix_servers_reservation")
        async with db.engine.connect() as conn:
            for (sql, params), index in zip(statements, wanted, strict=True):
                result = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params)
                plan = [str(row[-1]) for row in result]
                assert any(f"USING INDEX {index}" in x for x in plan), (sql, plan)
                assert not any(x.startswith("SCAN") for x in plan), (sql, plan)


# `PRAGMA optimize` runs ANALYZE with `analysis_limit` 400 on the tables it picks.
@pytest.mark.parametrize("statistics", ["none", "analyze", "analyze-limited"])
async def test_sqlite_controller_queries_search_the_phase_index(
    tmp_path: Path, sqlite_template: Path, statistics: str
) -> None:
    import shutil

    target = tmp_path / "canopy.db"
    shutil.copy(sqlite_template, target)
    db = Database(f"sqlite+aiosqlite:///{target}")
    clock = FakeClock()
    try:
        from canopy.bootstrap import seed

        await seed(db, settings(str(tmp_path)), clock)
        await _fill(db, clock)
        if statistics != "none":
            async with db.engine.connect() as conn:
                if statistics == "analyze-limited":
                    await conn.exec_driver_sql("PRAGMA analysis_limit=400")
                await conn.exec_driver_sql("ANALYZE")
                stat = await conn.exec_driver_sql(
                    "SELECT stat FROM sqlite_stat1 WHERE idx = 'ix_servers_phase'"
                )
                assert stat.scalar_one_or_none(), "the statistics are there"
        statements = await _controller_statements(db, clock, tmp_path)
        # Placement loads the servers it cannot place by their ids (to record their wait):
        # a look-up of the primary key, not a search for work.
        by_id = [st for st in statements if "WHERE servers.id IN (" in st[0]]
        assert len(by_id) == 1  # no cloud was inventoried: none of the batch is placed
        searches = [st for st in statements if st not in by_id]
        assert len(searches) >= 7  # 2 x (count, lease), converging, placement's 2
        for (sql, _), plan in zip(searches, await _sqlite_plans(db, searches), strict=True):
            assert any("USING INDEX ix_servers_phase" in x for x in plan), (sql, plan)
            assert not any(x.startswith("SCAN") for x in plan), (sql, plan)
        for (sql, _), plan in zip(by_id, await _sqlite_plans(db, by_id), strict=True):
            assert plan == ["SEARCH servers USING INDEX sqlite_autoindex_servers_1 (id=?)"], (
                sql,
                plan,
            )
    finally:
        await db.dispose()


def test_rare_is_sqlite_unlikely_and_plain_elsewhere() -> None:
    from sqlalchemy import select
    from sqlalchemy.dialects import postgresql, sqlite

    q = select(Server.id).where(rare(Server.phase == "create"))
    assert "WHERE unlikely(servers.phase = ?)" in str(q.compile(dialect=sqlite.dialect()))
    pg = str(q.compile(dialect=postgresql.dialect()))
    assert "WHERE servers.phase = %(phase_1)s" in pg
    assert "unlikely" not in pg


def test_scarce_is_sqlite_likelihood_and_plain_elsewhere() -> None:
    from sqlalchemy import select
    from sqlalchemy.dialects import postgresql, sqlite

    q = select(Server.id).where(scarce(Server.name == "web-42"))
    lite = str(q.compile(dialect=sqlite.dialect()))
    assert "WHERE likelihood(servers.name = ?, 0.001)" in lite
    pg = str(q.compile(dialect=postgresql.dialect()))
    assert "WHERE servers.name = %(name_1)s" in pg and "likelihood" not in pg


async def test_postgres_plans_use_the_phase_index_with_statistics(
    pg_seeded: Database, clock: FakeClock, tmp_path: Path
) -> None:
    db = pg_seeded
    await _fill(db, clock)
    async with db.engine.connect() as conn:
        await conn.execute(text("ANALYZE servers"))
        await conn.commit()
    rt = Runtime(db=db, settings=settings(str(tmp_path)), drivers={}, clock=clock, worker_id="w")
    now = clock.now()
    queries = [
        ProvisioningController(rt).count_query(now, now),
        PowerController(rt).count_query(now, now),
        converging("private"),
    ]
    async with db.engine.connect() as conn:
        for q in queries:
            sql = str(q.compile(db.engine.sync_engine, compile_kwargs={"literal_binds": True}))
            plan = (await conn.execute(text("EXPLAIN (FORMAT JSON) " + sql))).scalar_one()
            body = json.dumps(plan)
            assert "ix_servers_phase" in body, (sql, body)
            assert "Seq Scan" not in body, (sql, body)


@pytest.mark.parametrize("deleted", [None, False])
async def test_postgres_changes_since_searches_an_updated_at_index(
    pg_seeded: Database, clock: FakeClock, deleted: bool | None
) -> None:
    """A project's `changes-since` page (as the list prepares it) is an index range on
    PostgreSQL too, with statistics: never a walk of the project's rows."""
    from canopy.domain.context import RequestContext
    from canopy.services.server_queries import ServerQuery
    from canopy.services.server_statements import shape_of, statement

    db = pg_seeded
    await _fill(db, clock)
    async with db.engine.connect() as conn:
        await conn.execute(text("ANALYZE servers"))
        await conn.commit()
    query = ServerQuery(changes_since=clock.now() + timedelta(seconds=1), deleted=deleted)
    shape, values = shape_of(RequestContext(project_id="p1"), query, sqlite=False)
    q = statement((Server.id,), shape, query.sort, marker=False, limit=True)
    q = q.params(values, q_limit=100)
    sql = str(q.compile(db.engine.sync_engine, compile_kwargs={"literal_binds": True}))
    async with db.engine.connect() as conn:
        found = (await conn.execute(text(sql))).all()
        plan = (await conn.execute(text("EXPLAIN (FORMAT JSON) " + sql))).scalar_one()
    assert len(found) == 4  # the servers in working phases, a second newer
    body = json.dumps(plan)
    assert "ix_servers_project_updated" in body or "ix_servers_updated" in body, body
    assert "Seq Scan" not in body, body


@asynccontextmanager
async def _filled_sqlite(
    tmp_path: Path, sqlite_template: Path, statistics: bool
) -> AsyncIterator[Database]:
    """A seeded copy of the migrated template holding `_fill`'s servers, analysed or not."""
    import shutil

    from canopy.bootstrap import seed

    target = tmp_path / "canopy.db"
    shutil.copy(sqlite_template, target)
    db = Database(f"sqlite+aiosqlite:///{target}")
    clock = FakeClock()
    try:
        await seed(db, settings(str(tmp_path)), clock)
        await _fill(db, clock)
        if statistics:
            async with db.engine.connect() as conn:
                await conn.exec_driver_sql("ANALYZE")
        yield db
    finally:
        await db.dispose()


def test_no_servers_index_of_live_rows_leads_with_deleted() -> None:
    """Nearly every row shares `deleted = false`: an index that leads with it is chosen
    by SQLite without statistics over the selective one a query was written for. Only a
    partial index of the deleted rows may, since no query of live rows can use it."""
    for index in Server.__table__.indexes:
        partial = index.dialect_options["sqlite"]["where"] is not None
        assert index.columns[0].name != "deleted" or partial, index.name


@pytest.mark.parametrize("statistics", [False, True])
async def test_deleted_lists_search_the_deleted_rows_only(
    tmp_path: Path, sqlite_template: Path, statistics: bool
) -> None:
    """A list of deleted servers across projects (`--all-projects --deleted`) searches
    the partial index of deleted rows; a list of live ones never does."""
    from canopy.domain.context import RequestContext
    from canopy.services.server_queries import ServerQuery
    from canopy.services.server_statements import shape_of, statement

    async with _filled_sqlite(tmp_path, sqlite_template, statistics) as db:
        ctx = RequestContext(project_id="p1", roles=frozenset({"admin"}), is_admin_project=True)
        for deleted, wanted in ((True, "ix_servers_deleted_order"), (False, None)):
            query = ServerQuery(all_projects=True, deleted=deleted)
            shape, values = shape_of(ctx, query, sqlite=True)
            q = statement((Server.id,), shape, query.sort, marker=False, limit=True)
            q = q.params(values, q_limit=100)
            sql = str(q.compile(db.engine.sync_engine, compile_kwargs={"literal_binds": True}))
            plan = (await _sqlite_plans(db, [(sql.replace("%", "%%"), ())]))[0]
            if wanted:
                assert any(wanted in x for x in plan), (sql, plan)
            else:
                assert not any("ix_servers_deleted_order" in x for x in plan), (sql, plan)


@pytest.mark.parametrize("statistics", [False, True])
async def test_lookups_with_a_deleted_filter_search_their_own_index(
    tmp_path: Path, sqlite_template: Path, statistics: bool
) -> None:
    """A server group's members and the servers on a host, asked as the code asks them,
    are found by the group's and the host's index, not by walking every live server."""
    from canopy.domain.errors import Conflict
    from canopy.reservations.host_occupants import refuse_occupied
    from canopy.services.quotas import group_member_count

    async with _filled_sqlite(tmp_path, sqlite_template, statistics) as db:
        seen: list[tuple[str, Any]] = []

        def _seen(_c: Any, _cur: Any, sql: str, params: Any, _ctx: Any, _many: bool) -> None:
            if "FROM servers" in sql:
                seen.append((sql, params))

        event.listen(db.engine.sync_engine, "before_cursor_execute", _seen)
        try:
            async with db.read() as s:
                assert await group_member_count(s, "no-such-group") == 0
                # No server is on h-none, but _fill's servers in working phases have no
                # host yet: refused as they might land there (both look-ups have run).
                with pytest.raises(Conflict, match="is not known yet"):
                    await refuse_occupied(s, "private", "h-none", "h-none")
        finally:
            event.remove(db.engine.sync_engine, "before_cursor_execute", _seen)
        assert len(seen) >= 2, seen
        for (sql, _), plan in zip(seen, await _sqlite_plans(db, seen), strict=True):
            assert plan, sql
            assert not any("deleted=" in x or x.startswith("SCAN") for x in plan), (sql, plan)
            assert any("ix_servers_group" in x or "ix_servers_cloud_host" in x for x in plan), (
                sql,
                plan,
            )
