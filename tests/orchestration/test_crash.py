"""A worker that dies at any moment of a stack's create leaves work the next one finishes,
with no server made twice and no stack stuck IN_PROGRESS."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from canopy.controllers.runtime import Runtime
from canopy.controllers.worker import Worker
from canopy.services.server_create_many import Made
from canopy.services.servers import ServerService
from canopy.store.leases import lease_rows
from canopy.store.models import Stack
from tests.controllers.harness import Plane, make_plane

from .helpers import CLOUDS, create, hot, live_servers, resources, server, settle, stack

FOUR = hot({f"vm{i}": server() for i in range(4)})


def _successor(p: Plane) -> Plane:
    """Another worker on the same database and clouds (the first one is gone)."""
    rt = Runtime(
        db=p.db,
        settings=p.settings,
        drivers=p.rt.drivers,
        clock=p.clock,
        worker_id="second-worker",
        rng=random.Random(3),
    )
    return Plane(p.settings, p.db, p.clock, rt, Worker(rt), p.service, p.ctx)


async def test_a_step_that_dies_with_its_servers_written_is_redone_once(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "crashy", FOUR)
        real = ServerService.create_each
        written: list[int] = []

        async def dies_once_written(self: ServerService, *a: Any, **kw: Any) -> list[Made]:
            made = await real(self, *a, **kw)
            written.append(len(made))
            raise RuntimeError("kill -9")  # the worker dies with the servers written

        monkeypatch.setattr(ServerService, "create_each", dies_once_written)
        assert await p.worker.orchestration.run_once() == 1
        monkeypatch.setattr(ServerService, "create_each", real)
        assert written == [4]  # the step's servers, all in one batch
        # Nothing of the step was kept: the servers it made were rolled back with it.
        assert await live_servers(p) == []
        assert await resources(p, sid) == {}
        # The dead worker's lease on the stack runs out; the next worker takes it over.
        nxt = _successor(p)
        assert await nxt.worker.orchestration.run_once() == 0  # still leased
        p.clock.advance(p.settings.controllers.lease_seconds + 1)
        done = await settle(nxt, sid)
        assert (done.action, done.status) == ("CREATE", "COMPLETE"), done.status_reason
        servers = await live_servers(p)
        assert len(servers) == 4
        assert {r.server_id for r in (await resources(p, sid)).values()} == {s.id for s in servers}
    finally:
        await p.close()


async def test_a_worker_that_dies_holding_a_stack_is_taken_over(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "orphan", FOUR)
        # The first worker steps once (servers created and committed), then takes the
        # stack again and dies holding it.
        assert await p.worker.orchestration.run_once() == 1
        assert len(await live_servers(p)) == 4
        async with p.db.session() as s:
            [held] = await lease_rows(
                s,
                Stack,
                where=[Stack.id == sid],
                worker=p.rt.worker_id,
                now=p.clock.now(),
                lease_seconds=p.settings.controllers.lease_seconds,
                limit=1,
            )
            assert held.claimed_by == "test-worker"
        nxt = _successor(p)
        p.clock.advance(p.settings.controllers.lease_seconds + 1)
        done = await settle(nxt, sid)
        assert done.status == "COMPLETE", done.status_reason
        assert len(await live_servers(p)) == 4  # none made twice
        assert (await stack(p, sid)).claimed_by is None
    finally:
        await p.close()
