"""ServerService.create_each: many requests in one transaction, each faring exactly as its
own create would (validation, quota in order, rows), with one write per table."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from canopy.bootstrap import ensure_project
from canopy.domain.context import RequestContext
from canopy.domain.errors import CanopyError, InvalidRequest, QuotaError
from canopy.services.server_create_many import Made
from canopy.services.servers import CreateServer
from canopy.store import quota_usage
from canopy.store.models import InstanceAction, Server, ServerGroup, ServerTag, ServerUserData
from tests.controllers.harness import Plane, make_plane, statements


@pytest.fixture
async def plane(db_url: str, tmp_path: Path) -> AsyncIterator[Plane]:
    p = await make_plane(db_url, tmp_path)
    try:
        yield p
    finally:
        await p.close()


async def _project(p: Plane, name: str, **quotas: int) -> RequestContext:
    pid = await ensure_project(p.db, p.clock, name, quotas=quotas or None)
    return RequestContext(project_id=pid, user_id=f"{name}-user")


def _req(name: str, **kw: Any) -> CreateServer:
    kw.setdefault("flavor", "m1.small")
    kw.setdefault("image", "cirros")
    return CreateServer(name=name, **kw)


async def _each(p: Plane, ctx: RequestContext, reqs: Sequence[CreateServer]) -> list[Made]:
    async with p.db.session() as s:
        return await p.service.create_each(ctx, reqs, session=s)


async def _usage(p: Plane, project: str) -> tuple[quota_usage.Usage, quota_usage.Usage]:
    async with p.db.read() as s:
        return await quota_usage.current(s, project), await quota_usage.counted(s, project)


async def test_each_request_fares_as_it_would_alone(plane: Plane) -> None:
    ctx = await _project(plane, "each", instances=3, cores=-1, ram=-1)
    reqs = [
        _req("a"),
        _req("b", flavor="m9.huge"),
        _req("c", hints={"reservation": "no-such-reservation"}),
        _req("d"),
        _req("e"),
        _req("f"),
    ]
    made = await _each(plane, ctx, reqs)
    assert [x[0].name if isinstance(x, list) else None for x in made] == [
        "a",
        None,
        None,
        "d",
        "e",
        None,
    ]
    assert isinstance(made[1], InvalidRequest)
    assert str(made[1]) == "Flavor m9.huge could not be found."
    # The reservation request went through the single create: its own error, nothing kept.
    assert isinstance(made[2], CanopyError) and not isinstance(made[2], QuotaError)
    assert isinstance(made[5], QuotaError)
    assert (
        str(made[5])
        == "Quota exceeded for instances: Requested 1, but already used 3 of 3 instances"
    )
    # The same request alone, now: the same refusal.
    with pytest.raises(QuotaError) as alone:
        await plane.service.create(ctx, _req("g"))
    assert str(alone.value) == str(made[5])
    counters, counted = await _usage(plane, ctx.project_id)
    assert counters == counted
    assert counted.instances == 3


async def test_one_write_per_table_for_many_requests(plane: Plane) -> None:
    ctx = await _project(plane, "bulk", instances=-1, cores=-1, ram=-1)
    reqs = [_req(f"vm{i}", tags=("web", f"n{i}"), user_data="aGk=") for i in range(30)]
    with statements(plane.db) as seen:
        made = await _each(plane, ctx, reqs)
    servers = [sv for x in made if isinstance(x, list) for sv in x]
    assert [sv.name for sv in servers] == [f"vm{i}" for i in range(30)]
    for table in ("servers", "server_tags", "server_user_data", "instance_actions"):
        assert sum(1 for q in seen if q.startswith(f"INSERT INTO {table} ")) == 1, table
    assert sum(1 for q in seen if "FROM flavors" in q) <= 2  # by id, then by name: once
    assert sum(1 for q in seen if q.startswith("UPDATE quota_usage")) == 1
    async with plane.db.read() as s:
        ids = [sv.id for sv in servers]
        tags = (await s.execute(select(ServerTag.server_id, ServerTag.tag))).all()
        assert sorted(tags) == sorted(
            (sv.id, t) for i, sv in enumerate(servers) for t in ("web", f"n{i}")
        )
        data = await s.scalar(select(func.count()).select_from(ServerUserData))
        assert data == 30
        acts = (
            await s.execute(
                select(InstanceAction.server_id, InstanceAction.action, InstanceAction.user_id)
            )
        ).all()
        assert sorted(acts) == sorted((i, "create", ctx.user_id) for i in ids)
        rows = list((await s.execute(select(Server).where(Server.id.in_(ids)))).scalars())
        assert {r.project_id for r in rows} == {ctx.project_id}
        assert {r.status for r in rows} == {"BUILD"}
    counters, counted = await _usage(plane, ctx.project_id)
    assert counters == counted and counted.instances == 30


async def test_a_server_groups_members_count_across_the_batch(plane: Plane) -> None:
    ctx = await _project(plane, "grp", server_group_members=2)
    async with plane.db.session() as s:
        s.add(
            ServerGroup(
                id="g1",
                project_id=ctx.project_id,
                user_id=ctx.user_id,
                name="g",
                policy="anti-affinity",
                created_at=plane.clock.now(),
            )
        )
    made = await _each(plane, ctx, [_req(f"m{i}", group_id="g1") for i in range(3)] + [_req("x")])
    assert [isinstance(x, list) for x in made] == [True, True, False, True]
    assert str(made[2]) == "Quota exceeded, too many servers in group"


async def test_concurrent_batches_never_pass_the_limit_on_postgres(
    pg_url: str, tmp_path: Path
) -> None:
    from tests.conftest import empty_database

    await empty_database(pg_url)
    p = await make_plane(pg_url, tmp_path)
    try:
        ctx = await _project(p, "race", instances=5, cores=-1, ram=-1)

        async def batch(k: int) -> int:
            made = await _each(p, ctx, [_req(f"b{k}-{i}", flavor="m1.tiny") for i in range(4)])
            return sum(isinstance(x, list) for x in made)

        assert sum(await asyncio.gather(*(batch(k) for k in range(4)))) == 5
        counters, counted = await _usage(p, ctx.project_id)
        assert counters == counted and counted.instances == 5
    finally:
        await p.close()


async def test_the_callers_ids_name_the_plain_requests_servers(plane: Plane) -> None:
    """`ids` (a stack's resource rows name their servers first): each plain request's
    server has its id; a refused request writes nothing under its id."""
    ctx = await _project(plane, "named", instances=2, cores=-1, ram=-1)
    ids = ["srv-a", "srv-b", "srv-c"]
    async with plane.db.session() as s:
        made = await plane.service.create_each(
            ctx, [_req("a"), _req("b"), _req("c")], session=s, ids=ids
        )
    assert [x[0].id if isinstance(x, list) else None for x in made] == ["srv-a", "srv-b", None]
    assert isinstance(made[2], QuotaError)
    async with plane.db.read() as s:
        found = set((await s.scalars(select(Server.id).where(Server.id.in_(ids)))).all())
    assert found == {"srv-a", "srv-b"}
    with pytest.raises(ValueError, match="one id per request"):
        async with plane.db.session() as s:
            await plane.service.create_each(ctx, [_req("d")], session=s, ids=[])
