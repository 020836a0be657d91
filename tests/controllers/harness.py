"""A whole control plane in one test: settings, a migrated database, sim clouds on a fake
clock, the controllers and the service layer. Time moves only when the test says so."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, select

from canopy.bootstrap import ensure_project, seed
from canopy.config import Settings, load_settings
from canopy.controllers.runtime import Runtime
from canopy.controllers.worker import Worker
from canopy.domain.clock import FakeClock
from canopy.domain.context import RequestContext
from canopy.providers.registry import build_drivers
from canopy.providers.sim.driver import SimCompute
from canopy.services.servers import CreateServer, ServerService
from canopy.store.db import Database
from canopy.store.models import Server

# One private sim cloud of two small hosts, booting in 2 s: the plane most tests need.
PRIVATE = """
[[clouds]]
name = "private"
tier = 0
[clouds.sim]
hosts = 2
host_vcpus = 8
boot_seconds = 2
"""

# Where every plane's fake clock stands when its test begins.
START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Plane:
    settings: Settings
    db: Database
    clock: FakeClock
    rt: Runtime
    worker: Worker
    service: ServerService
    ctx: RequestContext

    def sim(self, cloud: str) -> SimCompute:
        d = self.rt.drivers[cloud]
        assert isinstance(d, SimCompute)
        return d

    async def create(self, n: int = 1, name: str = "vm", **kw: Any) -> list[str]:
        req = CreateServer(
            name=name,
            flavor=kw.pop("flavor", "m1.small"),
            image=kw.pop("image", "cirros"),
            min_count=n,
            max_count=n,
            **kw,
        )
        return [s.id for s in await self.service.create(self.ctx, req)]

    async def create_active(self, n: int = 1, **kw: Any) -> list[str]:
        """`create(n, **kw)`, then steps until `n` servers (of any) are ACTIVE."""
        ids = await self.create(n, **kw)

        async def ready() -> bool:
            return await self.count(status="ACTIVE") >= n

        await self.run_until(ready)
        return ids

    async def step(self, advance: float = 1.0) -> int:
        n = await self.worker.step()
        self.clock.advance(advance)
        return n

    async def run_until(
        self, done: Callable[[], Any], *, steps: int = 200, advance: float = 1.0
    ) -> None:
        for _ in range(steps):
            if await done():
                return
            await self.step(advance)
        raise AssertionError(f"did not converge in {steps} steps")

    async def servers(self) -> list[Server]:
        async with self.db.read() as s:
            return list((await s.execute(select(Server).order_by(Server.created_at))).scalars())

    async def count(self, **where: Any) -> int:
        async with self.db.read() as s:
            q = select(func.count()).select_from(Server).filter_by(**where)
            return int((await s.execute(q)).scalar_one())

    async def close(self) -> None:
        for d in self.rt.drivers.values():
            await d.close()
        await self.db.dispose()


async def make_plane(
    db_url: str,
    tmp_path: Path,
    *,
    toml: str = "",
    overrides: dict[str, Any] | None = None,
    seed_value: int = 7,
) -> Plane:
    cfg = tmp_path / "canopy.toml"
    cfg.write_text(f'data_dir = "{tmp_path}"\n' + toml)
    base: dict[str, Any] = {
        "database": {"url": db_url},
        "controllers": {
            "poll_seconds": 0.01,
            "sync_seconds": 1.0,
            "lease_seconds": 30.0,
            "call_timeout_seconds": 10.0,
        },
    }
    if overrides:
        for k, v in overrides.items():
            base[k] = {**base.get(k, {}), **v} if isinstance(v, dict) else v
    settings = load_settings(cfg, env={}, overrides=base)
    clock = FakeClock(START - timedelta(seconds=1))
    db = Database(settings.database_url)
    await seed(db, settings, clock)
    drivers = build_drivers(settings, clock)
    rt = Runtime(
        db=db,
        settings=settings,
        drivers=drivers,
        clock=clock,
        worker_id="test-worker",
        rng=random.Random(seed_value),
    )
    unlimited = {"instances": -1, "cores": -1, "ram": -1}
    project = await ensure_project(db, clock, "demo", quotas=unlimited)
    ctx = RequestContext(project_id=project, user_id="u1", roles=frozenset({"member"}))
    worker = Worker(rt)
    # As a worker does before its loops start: every cloud's capacity and flavors are read.
    await worker.inventory.run_once(force=True)
    # Its simulated latency moves the fake clock: the plane starts a second early, so that
    # the tests begin at the clock's usual start, a whole minute (Blazar dates are minutes).
    clock.advance((START - clock.now()).total_seconds())
    return Plane(settings, db, clock, rt, worker, ServerService(db, settings, clock), ctx)


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    """Every SQL statement the database runs inside the block, whitespace folded."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(" ".join(statement.split()))

    engine = db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)
