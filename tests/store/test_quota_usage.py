"""A project's usage counters follow its creates and deletes, stay exact under concurrent
creates at the quota's edge, and are repaired by the recount after a drift."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select, update

from canopy.bootstrap import ensure_project
from canopy.controllers.housekeeping import HousekeepingController
from canopy.controllers.power import finalize_delete
from canopy.domain.context import RequestContext
from canopy.domain.errors import QuotaError
from canopy.services.servers import CreateServer
from canopy.store import quota_usage
from canopy.store.models import QuotaUsage, Server
from canopy.store.quota_usage import Usage
from tests.controllers.harness import Plane, make_plane


async def _counters(p: Plane, project: str) -> Usage | None:
    async with p.db.read() as s:
        row = await s.get(QuotaUsage, project)
        return None if row is None else Usage(row.instances, row.cores, row.ram)


async def _counted(p: Plane, project: str) -> Usage:
    async with p.db.read() as s:
        return await quota_usage.counted(s, project)


async def test_counters_follow_creates_and_deletes(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path)
    try:
        ids = await p.create(3, flavor="m1.small")  # 1 vCPU, 2048 MB each
        await p.create(1, flavor="m1.medium")  # 2 vCPUs, 4096 MB
        assert await _counters(p, p.ctx.project_id) == Usage(4, 5, 10240)
        assert await _counted(p, p.ctx.project_id) == Usage(4, 5, 10240)
        # The final step of a delete gives the server back; a second call changes nothing.
        for _ in range(2):
            async with p.db.session() as s:
                row = await s.get(Server, ids[0])
                assert row is not None
                await finalize_delete(s, row, p.clock.now(), "test")
        assert await _counters(p, p.ctx.project_id) == Usage(3, 4, 8192)
        assert await _counted(p, p.ctx.project_id) == Usage(3, 4, 8192)
    finally:
        await p.close()


async def test_a_project_without_counters_is_counted_on_its_first_create(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path)
    try:
        await p.create(2)
        async with p.db.session() as s:
            await s.execute(QuotaUsage.__table__.delete())
        assert await _counters(p, p.ctx.project_id) is None
        await p.create(1)
        assert await _counters(p, p.ctx.project_id) == Usage(3, 3, 6144)
    finally:
        await p.close()


async def test_recount_repairs_a_drift_and_says_so(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path)
    try:
        await p.create(2)
        async with p.db.session() as s:  # a drift, as a crash or a bug could leave
            await s.execute(
                update(QuotaUsage)
                .where(QuotaUsage.project_id == p.ctx.project_id)
                .values(instances=7, cores=0, ram=1)
            )
        house = HousekeepingController(p.rt)
        assert await house.recount(p.clock.now(), limit=1000) == 1
        assert await _counters(p, p.ctx.project_id) == Usage(2, 2, 4096)
        assert await house.recount(p.clock.now(), limit=1000) == 0  # nothing left to repair
        # The housekeeping job's pass runs the recount too.
        async with p.db.session() as s:
            await s.execute(update(QuotaUsage).values(instances=0))
        await house.run_once()
        assert await _counters(p, p.ctx.project_id) == Usage(2, 2, 4096)
    finally:
        await p.close()


async def test_a_repair_racing_a_create_repairs_the_drift_and_keeps_the_create(
    db_url: str, tmp_path: Path
) -> None:
    """The drift is computed from one read snapshot; a create committed between it and
    the repair's short write stays counted, and the same snapshot never applies twice."""
    p = await make_plane(db_url, tmp_path)
    try:
        await p.create(2)
        pid = p.ctx.project_id
        async with p.db.session() as s:
            await s.execute(
                update(QuotaUsage).where(QuotaUsage.project_id == pid).values(instances=7)
            )
        async with p.db.read() as s:
            [drift] = await quota_usage.drifts(s, [pid])
        assert drift.drifted and drift.kept.instances == 7 and drift.counted.instances == 2
        await p.create(1)  # commits after the snapshot: the counters go to 8
        async with p.db.session() as s:
            assert await quota_usage.repair(s, drift, p.clock.now())
        assert await _counters(p, pid) == await _counted(p, pid) == Usage(3, 3, 6144)
        async with p.db.session() as s:
            assert not await quota_usage.repair(s, drift, p.clock.now())  # fenced
        assert await _counters(p, pid) == Usage(3, 3, 6144)
    finally:
        await p.close()


async def test_concurrent_creates_at_the_edge_never_pass_the_limit_on_postgres(
    pg_url: str, tmp_path: Path
) -> None:
    from tests.conftest import empty_database

    await empty_database(pg_url)
    p = await make_plane(pg_url, tmp_path)
    try:
        project = await ensure_project(
            p.db, p.clock, "edge", quotas={"instances": 5, "cores": -1, "ram": -1}
        )
        ctx = RequestContext(project_id=project, user_id="u1", roles=frozenset({"member"}))
        await p.service.create(ctx, CreateServer(name="pre", flavor="m1.tiny", image="cirros"))

        async def one(i: int) -> bool:
            req = CreateServer(name=f"vm-{i}", flavor="m1.tiny", image="cirros")
            try:
                await p.service.create(ctx, req)
                return True
            except QuotaError:
                return False

        results = await asyncio.gather(*(one(i) for i in range(12)))
        assert sum(results) == 4  # 5 in all, with the one made before
        assert await _counters(p, project) == await _counted(p, project) == Usage(5, 5, 2560)
        async with p.db.read() as s:
            live = await s.scalars(
                select(Server.id).where(Server.project_id == project, Server.deleted.is_(False))
            )
            assert len(list(live)) == 5
    finally:
        await p.close()


@pytest.mark.parametrize("n", [2])
async def test_creates_after_deletes_reuse_the_room(db_url: str, tmp_path: Path, n: int) -> None:
    p = await make_plane(db_url, tmp_path)
    try:
        project = await ensure_project(
            p.db, p.clock, "small", quotas={"instances": n, "cores": -1, "ram": -1}
        )
        ctx = RequestContext(project_id=project, user_id="u1", roles=frozenset({"member"}))
        req = CreateServer(name="vm", flavor="m1.tiny", image="cirros", min_count=n, max_count=n)
        made = await p.service.create(ctx, req)
        with pytest.raises(QuotaError):
            await p.service.create(ctx, CreateServer(name="x", flavor="m1.tiny", image="cirros"))
        async with p.db.session() as s:
            row = await s.get(Server, made[0].id)
            assert row is not None
            await finalize_delete(s, row, p.clock.now(), "test")
        await p.service.create(ctx, CreateServer(name="y", flavor="m1.tiny", image="cirros"))
        assert await _counters(p, project) == await _counted(p, project) == Usage(n, n, n * 512)
    finally:
        await p.close()
