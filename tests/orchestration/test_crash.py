"""A worker that dies at any moment of a stack's create leaves work the next one finishes,
with no server made twice and no stack stuck IN_PROGRESS."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from canopy.controllers.runtime import Runtime
from canopy.controllers.worker import Worker
from canopy.orchestration.resources.server import NovaServer
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


async def test_a_step_cut_in_half_is_rolled_back_and_redone_once(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "crashy", FOUR)
        made = 0
        real = NovaServer.create

        async def dies_on_the_third(self: NovaServer, step: object, res: object) -> object:
            nonlocal made
            made += 1
            if made == 3:
                raise RuntimeError("kill -9")  # the worker dies mid-step
            return await real(self, step, res)  # type: ignore[arg-type]

        monkeypatch.setattr(NovaServer, "create", dies_on_the_third)
        assert await p.worker.orchestration.run_once() == 1
        monkeypatch.setattr(NovaServer, "create", real)
        # Nothing of the step was kept: the two servers it made were rolled back with it.
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
