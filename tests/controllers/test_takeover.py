"""Takeover after a crash: a `canopy up` killed with SIGKILL while servers are being built
and deleted leaves its rows leased; the restarted process takes them over within seconds.

The leases are short (10 s by default) because they are renewed while a step runs; before
that, a dead worker's rows sat for the old 60 s lease (servers in BUILD and `deleting` for
a minute after a restart). The process runs with the default lease length on purpose.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from canopy.bootstrap import ensure_project, open_database
from canopy.config import Settings, load_settings
from canopy.domain.clock import SystemClock
from canopy.domain.context import RequestContext
from canopy.domain.states import Phase
from canopy.services.servers import CreateServer, ServerService
from canopy.store.db import Database
from canopy.store.models import Server
from tests.controllers.procs import UpProcess

pytestmark = pytest.mark.slow


# Calls take a second each, three at a time per cloud: a kill always finds steps in
# flight. No lease length is set: the default is what is tested.
TOML = """[controllers]
poll_seconds = 0.2
sync_seconds = 1.0
[[clouds]]
name = "private"
tier = 0
concurrency = 3
[clouds.sim]
hosts = 4
host_vcpus = 16
boot_seconds = 2
api_latency_ms = 1000
"""


async def _rows(db: Database) -> list[Server]:
    async with db.read() as s:
        return list((await s.execute(select(Server))).scalars())


async def _wait(
    db: Database, up: UpProcess, done: Callable[[list[Server]], bool], within: float, what: str
) -> list[Server]:
    deadline = time.monotonic() + within
    while True:
        rows = await _rows(db)
        if done(rows):
            return rows
        assert up.proc is not None and up.proc.poll() is None, up.tail()
        states = Counter((r.phase, r.status, r.claimed_by is not None) for r in rows)
        assert time.monotonic() < deadline, f"{what} not reached in {within:g}s: {states}"
        await asyncio.sleep(0.1)


async def test_rows_of_a_killed_canopy_up_are_taken_over_within_seconds(
    db_url: str, tmp_path: Path
) -> None:
    up = UpProcess(tmp_path, db_url, TOML)
    up.start()
    db: Database | None = None
    try:
        await up.healthy()
        settings: Settings = load_settings(up.config, env={})
        lease = settings.controllers.lease_seconds
        assert lease <= 10  # the default: short, because it is renewed
        db = await open_database(settings)
        clock = SystemClock()
        project = await ensure_project(
            db, clock, "takeover", quotas={"instances": -1, "cores": -1, "ram": -1}
        )
        ctx = RequestContext(project_id=project, user_id="tester")
        svc = ServerService(db, settings, clock)

        def boot(name: str, n: int) -> CreateServer:
            return CreateServer(
                name=name, flavor="m1.tiny", image="cirros", min_count=n, max_count=n
            )

        old = [s.id for s in await svc.create(ctx, boot("old", 4))]
        await _wait(db, up, lambda rows: all(r.status == "ACTIVE" for r in rows), 90, "ACTIVE")

        # Five new servers to build and the four old ones to delete, at once.
        new = [s.id for s in await svc.create(ctx, boot("new", 5))]
        for sid in old:
            await svc.delete(ctx, sid)

        def both_leased(rows: list[Server]) -> bool:
            held = Counter(r.phase for r in rows if r.claimed_by is not None)
            return held[Phase.CREATE] > 0 and held[Phase.DELETE] > 0

        await _wait(db, up, both_leased, 60, "creates and deletes in flight")
        up.kill9()
        killed = time.monotonic()
        # The dead process still holds leases on rows being built and being deleted.
        rows = await _rows(db)
        held = Counter(r.phase for r in rows if r.claimed_by is not None)
        assert held[Phase.CREATE] > 0 and held[Phase.DELETE] > 0, held

        up.start()

        def settled(rows: list[Server]) -> bool:
            by_id = {r.id: r for r in rows}
            return all(by_id[i].status == "ACTIVE" for i in new) and all(
                by_id[i].status == "DELETED" for i in old
            )

        # A few lease lengths: the restart, the dead leases running out, the calls (1 s
        # each) and the boots (2 s). The old 60 s lease alone would not fit.
        await _wait(db, up, settled, 4 * lease, "takeover")
        took = time.monotonic() - killed
        assert took < 4 * lease
        rows = await _rows(db)
        assert all(r.claimed_by is None for r in rows)
    finally:
        up.stop()
        if db is not None:
            await db.dispose()
