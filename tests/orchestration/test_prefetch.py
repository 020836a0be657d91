"""prefetch: a step reads the servers of its resources in progress, and the placement
reasons of those that answered, in bulk; the checks then read them without a query each.
A server still going is not loaded: its check waits on what prefetch found."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from canopy.domain.context import RequestContext
from canopy.orchestration.prefetch import prefetch
from canopy.orchestration.resources.base import Progress, Step
from canopy.orchestration.resources.server import NovaServer
from canopy.services.servers import ServerService
from canopy.store.models import Placement, Server, Stack, StackResource
from tests.controllers.harness import make_plane, statements

from .helpers import CLOUDS, create, hot, server, settle


async def test_a_step_reads_its_servers_and_reasons_in_bulk(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "many", hot({f"vm{i}": server() for i in range(5)}))
        assert (await settle(p, sid)).status == "COMPLETE"
        async with p.db.session() as s:
            stack = await s.get(Stack, sid)
            assert stack is not None
            rows = list(
                (await s.execute(select(StackResource).where(StackResource.stack_id == sid)))
                .scalars()
                .all()
            )
            for row in rows:  # as if each were still waiting on its server
                row.status = "IN_PROGRESS"
                row.action = "CREATE"
            latest = {}
            for row in rows:
                reason = await s.scalar(
                    select(Placement.reason)
                    .where(Placement.server_id == row.server_id)
                    .order_by(Placement.id.desc())
                    .limit(1)
                )
                latest[row.server_id] = reason
            ctx = RequestContext(project_id=stack.project_id, user_id=stack.user_id)
            step = Step(s, stack, p.clock, ServerService(p.db, p.settings, p.clock), ctx)
            with statements(p.db) as seen:
                await prefetch(step, rows)
            assert len(seen) == 3  # the servers' states, the answered servers, their reasons
            assert step.reasons == latest and all(step.reasons.values())
            with statements(p.db) as seen:
                for row in rows:
                    progress = await NovaServer().check(step, row)
                    assert progress.done
                    assert row.attributes["canopy"]["reason"] == latest[row.server_id]
            assert not [q for q in seen if "FROM servers" in q or "FROM placements" in q]
            assert await s.get(Server, rows[0].server_id) is not None
    finally:
        await p.close()


async def test_servers_still_going_are_noted_not_loaded(db_url: str, tmp_path: Path) -> None:
    """A step woken by the first servers of a wide stack to boot loaded every server still
    building too: now it reads their state (three columns) and loads the answered ones."""
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "wide", hot({f"vm{i}": server() for i in range(5)}))
        assert (await settle(p, sid)).status == "COMPLETE"
        async with p.db.session() as s:
            stack = await s.get(Stack, sid)
            assert stack is not None
            q = select(StackResource).where(StackResource.stack_id == sid)
            rows = sorted((await s.execute(q)).scalars(), key=lambda r: r.name)
            for row in rows:  # as if each were still waiting on its server
                row.status = "IN_PROGRESS"
                row.action = "CREATE"
            building = {r.server_id for r in rows[:3]}
            for sv in (await s.execute(select(Server).where(Server.id.in_(building)))).scalars():
                sv.status = "BUILD"
            await s.flush()
            s.expunge_all()
            ctx = RequestContext(project_id=stack.project_id, user_id=stack.user_id)
            step = Step(s, stack, p.clock, ServerService(p.db, p.settings, p.clock), ctx)
            await prefetch(step, rows)
            assert step.going == building
            assert {sv.id for sv in step.held if isinstance(sv, Server)} == {
                r.server_id for r in rows[3:]
            }
            with statements(p.db) as seen:
                found = [await NovaServer().check(step, row) for row in rows]
            assert [x.done for x in found] == [False] * 3 + [True] * 2
            assert not found[0].failed
            assert not [q for q in seen if "FROM servers" in q]  # none read one by one
    finally:
        await p.close()


async def test_a_server_deleted_in_the_step_is_read_again(db_url: str, tmp_path: Path) -> None:
    """A server the step itself deletes is checked from its row again, not from what
    prefetch found before the delete."""
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "one", hot({"vm": server()}))
        assert await p.worker.orchestration.run_once() == 1  # created, not yet placed
        async with p.db.session() as s:
            stack = await s.get(Stack, sid)
            assert stack is not None
            q = select(StackResource).where(StackResource.stack_id == sid)
            [row] = list((await s.execute(q)).scalars())
            ctx = RequestContext(project_id=stack.project_id, user_id=stack.user_id)
            step = Step(s, stack, p.clock, ServerService(p.db, p.settings, p.clock), ctx)
            await prefetch(step, [row])
            assert step.going == {row.server_id}
            row.action = "DELETE"
            progress = await NovaServer().delete(step, row)
            assert row.server_id not in step.going
            assert progress == Progress()  # its delete goes on (the power controller's)
    finally:
        await p.close()
