"""prefetch: a step reads the servers of its resources in progress, and the placement
reasons of those that answered, in bulk; the checks then read them without a query each."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from canopy.domain.context import RequestContext
from canopy.orchestration.prefetch import prefetch
from canopy.orchestration.resources.base import Step
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
            assert len(seen) == 2  # the servers, then the reasons
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
