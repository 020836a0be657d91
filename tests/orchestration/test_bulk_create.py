"""A step starts all its new server resources together: one quota check and one write per
table for the lot, with every rule a single create keeps (quota in order, events per
resource, the root cause of a failure, crash safety: see test_crash.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from canopy.bootstrap import ensure_project
from canopy.domain.context import RequestContext
from canopy.orchestration.rows import build
from canopy.store import quota_usage
from canopy.store.models import StackResource
from tests.controllers.harness import make_plane, statements

from .helpers import CLOUDS, create, events, hot, live_servers, resources, server, settle


async def test_the_first_step_costs_the_same_statements_for_4_or_40_servers(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        seen: dict[int, list[str]] = {}
        for n in (4, 40):
            sid = await create(p, f"wide{n}", hot({f"vm{i}": server() for i in range(n)}))
            with statements(p.db) as seen[n]:
                assert await p.worker.orchestration.run_once() == 1
            rows = await resources(p, sid)
            assert len(rows) == n
            assert {(r.action, r.status) for r in rows.values()} == {("CREATE", "IN_PROGRESS")}
            assert len({r.server_id for r in rows.values()}) == n
            started = [e for e in await events(p, sid) if e.resource_name != f"wide{n}"]
            assert sorted(e.resource_name for e in started) == sorted(rows)
            await settle(p, sid)
        assert len(seen[40]) <= len(seen[4])  # the first also made the usage counters
        assert sum(q.startswith("INSERT INTO servers ") for q in seen[40]) == 1
        assert sum(q.startswith("INSERT INTO stack_events ") for q in seen[40]) == 1
    finally:
        await p.close()


async def test_servers_past_the_quota_fail_their_resources_and_the_stack(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        project = await ensure_project(
            p.db, p.clock, "tight", quotas={"instances": 3, "cores": -1, "ram": -1}
        )
        ctx = RequestContext(project_id=project, user_id="u1", roles=frozenset({"member"}))
        template = hot({f"vm{i}": server() for i in range(5)}, None)
        sid = await create(p, "over", template, ctx=ctx, disable_rollback=True)
        done = await settle(p, sid)
        assert done.status == "FAILED"
        assert done.status_reason == (
            "Resource CREATE failed: resources.vm3: QuotaError: Quota exceeded for instances: "
            "Requested 1, but already used 3 of 3 instances"
        )
        rows = await resources(p, sid)
        assert [rows[f"vm{i}"].server_id is not None for i in range(5)] == [True] * 3 + [False] * 2
        assert rows["vm4"].status == "FAILED" and "Quota exceeded" in rows["vm4"].status_reason
        assert len([s for s in await live_servers(p) if s.project_id == project]) == 3
        async with p.db.read() as s:
            assert await quota_usage.current(s, project) == await quota_usage.counted(s, project)
        failed = [
            (e.resource_name, e.status)
            for e in await events(p, sid)
            if e.resource_name in ("vm3", "vm4")
        ]
        assert failed == [
            ("vm3", "IN_PROGRESS"),
            ("vm4", "IN_PROGRESS"),
            ("vm3", "FAILED"),
            ("vm4", "FAILED"),
        ]
    finally:
        await p.close()


async def test_a_groups_new_members_are_created_together(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        group = {
            "type": "OS::Heat::ResourceGroup",
            "properties": {"count": 12, "resource_def": server()},
        }
        sid = await create(p, "rg", hot({"rg": group}))
        with statements(p.db) as seen:
            assert await p.worker.orchestration.run_once() == 1
        assert sum(q.startswith("INSERT INTO servers ") for q in seen) == 1
        members = [r for r in (await resources(p, sid)).values() if r.group_id]
        assert len(members) == 12 and all(m.server_id for m in members)
        assert len({m.server_id for m in members}) == 12
        done = await settle(p, sid)
        assert done.status == "COMPLETE", done.status_reason
        assert len(await live_servers(p)) == 12
    finally:
        await p.close()


async def test_a_steps_events_are_written_in_order_and_before_its_servers(
    db_url: str, tmp_path: Path
) -> None:
    """A step holds its events and writes them in one statement (events.py): the first
    step's IN_PROGRESS events before its servers are asked for, and every event in the
    order it happened, the stack's CREATE_COMPLETE last."""
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "order", hot({f"vm{i}": server() for i in range(6)}))
        with statements(p.db) as seen:
            assert await p.worker.orchestration.run_once() == 1
        inserts = [q.split(" (")[0] for q in seen if q.startswith("INSERT INTO ")]
        assert inserts.count("INSERT INTO stack_events") == 1
        assert inserts.index("INSERT INTO stack_events") < inserts.index("INSERT INTO servers")
        assert (await settle(p, sid)).status == "COMPLETE"
        got = [(e.resource_name, e.action, e.status) for e in await events(p, sid)]
        assert got[0] == ("order", "CREATE", "IN_PROGRESS") and got[-1] == (
            "order",
            "CREATE",
            "COMPLETE",
        )
        for i in range(6):
            mine = [x[1:] for x in got if x[0] == f"vm{i}"]
            assert mine == [("CREATE", "IN_PROGRESS"), ("CREATE", "COMPLETE")]
    finally:
        await p.close()


async def test_the_first_steps_resource_rows_are_written_once_naming_their_servers(
    db_url: str, tmp_path: Path
) -> None:
    """The new server resources of a step are written with one INSERT (walk.py, rows.py)
    before their servers, each already naming the server made for it: no UPDATE of the
    rows in the step (the ORM wrote them without a server, then again with it)."""
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "once", hot({f"vm{i}": server() for i in range(8)}))
        with statements(p.db) as seen:
            assert await p.worker.orchestration.run_once() == 1
        heads = [q.split(" (")[0].split(" SET ")[0] for q in seen]
        assert heads.count("INSERT INTO stack_resources") == 1
        assert not any(h.startswith("UPDATE stack_resources") for h in heads)
        assert heads.index("INSERT INTO stack_resources") < heads.index("INSERT INTO servers")
        rows = await resources(p, sid)
        assert len(rows) == 8
        made = {sv.id for sv in await live_servers(p)}
        for r in rows.values():
            assert r.server_id in made and r.physical_resource_id == r.server_id
            assert (r.action, r.status) == ("CREATE", "IN_PROGRESS")
        assert (await settle(p, sid)).status == "COMPLETE"
        done = await resources(p, sid)
        assert {r.server_id for r in done.values()} == {r.server_id for r in rows.values()}
    finally:
        await p.close()


def test_a_held_row_names_every_column() -> None:
    """A held row is written from its values alone (rows.py): a column left out would be
    written as NULL rather than its default, so it is refused."""
    values = {c.key: None for c in StackResource.__table__.columns}
    row = build(dict(values, name="vm0"))
    assert row.name == "vm0" and row.group_id is None
    del values["group_id"]
    with pytest.raises(ValueError, match="group_id"):
        build(values)
