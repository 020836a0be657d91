"""What the read benchmarks share: a database of many steady servers, a token, and the
"floor" route (the same bytes as a page, prepared once) on canopy's own app.

Only APIs that predate the read-path work are used here, so `bench/page_cpu.py` can run
this against an older checkout (PYTHONPATH=<that checkout>/src) for a before/after figure.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Response
from sqlalchemy.engine import make_url

from bench.seed import Seeded, seed_servers, seed_sim
from canopy.bootstrap import ensure_project, open_database, seed
from canopy.config import Settings, load_settings
from canopy.domain.clock import SystemClock
from canopy.providers.registry import build_drivers
from canopy.providers.sim.driver import SimCompute
from canopy.services import identity, tokens
from canopy.services.passwords import hash_password
from canopy.store.db import Database
from canopy.store.models import Project, User

FLOOR_PATH = "/bench/floor"
PAGE = "/compute/v2.1/servers/detail?limit=100"


def cloud_names(clouds: int) -> list[str]:
    return [f"sim{i}" for i in range(clouds)]


def overrides(data_dir: Path, port: int, clouds: int, **extra: Any) -> dict[str, Any]:
    """Settings for `clouds` sim clouds of generous capacity, SQLite in `data_dir`."""
    out: dict[str, Any] = {
        "data_dir": str(data_dir),
        "api": {"host": "127.0.0.1", "port": port},
        "worker": {"metrics": False},
        "clouds": [
            {
                "name": name,
                "driver": "sim",
                "tier": 0,
                "sim": {"hosts": 10, "host_vcpus": 100000, "host_ram_mb": 10**8, "seed": 1},
            }
            for name in cloud_names(clouds)
        ],
    }
    out.update(extra)
    return out


def settings_for(data_dir: Path, port: int, clouds: int, **extra: Any) -> Settings:
    return load_settings(None, env={}, overrides=overrides(data_dir, port, clouds, **extra))


def wait_synced(settings: Settings, passes: int = 2, limit: float = 600.0) -> float:
    """Wait until every cloud's sync job has run `passes` times, the first being start-up's
    pass over every row (on a busy machine it outlasts any fixed settle): seconds waited.
    Read from the database file alone (SQLite), as the serving child writes it."""
    path = make_url(settings.database_url).database
    names = [f"sync:{c.name}" for c in settings.clouds]
    started = time.monotonic()
    while time.monotonic() - started < limit:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            marks = ",".join("?" * len(names))
            done = conn.execute(
                f"SELECT count(*) FROM jobs WHERE name IN ({marks}) AND runs >= ?",
                (*names, passes),
            ).fetchone()[0]
        if done == len(names):
            return time.monotonic() - started
        time.sleep(0.2)
    raise RuntimeError(f"the clouds' sync jobs did not run {passes} times in {limit:.0f} s")


@dataclass
class Prepared:
    data_dir: Path
    token: str
    project_id: str

    def cleanup(self) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)


async def make_token(db: Database, project_name: str = "bench") -> tuple[str, str]:
    """A member's token (an hour) on `project_name`, creating the user: (token, project)."""
    clock = SystemClock()
    now = clock.now()
    async with db.session() as s:
        from sqlalchemy import select

        p = (
            await s.execute(select(Project).where(Project.name == project_name))
        ).scalar_one_or_none()
        assert p is not None
        u = (await s.execute(select(User).where(User.name == "reader"))).scalar_one_or_none()
        if u is None:
            u = await identity.create_user(
                s, "reader", hash_password("secret"), now, default_project_id=p.id
            )
        await identity.grant(s, u.id, p.id, "member")
        token, _ = await tokens.issue_token(s, u, p, now, 3600)
        return token, p.id


async def prepare(
    n: int, clouds: int = 1, data_dir: Path | None = None, *, sims: bool = False, **extra: Any
) -> tuple[Prepared, Settings, Database]:
    """A database holding `n` steady servers of project `bench`, spread evenly over
    `clouds` sim clouds (each with one address), and a token for it. With `sims`, each
    sim cloud's state file holds its servers too (so the controllers' sync finds every row
    unchanged). The caller disposes of the database (and calls `cleanup`)."""
    tmp = data_dir or Path(tempfile.mkdtemp(prefix="canopy-bench-reads-"))
    settings = settings_for(tmp, 0, clouds, **extra)
    clock = SystemClock()
    db = await open_database(settings)
    await seed(db, settings, clock)
    project = await ensure_project(db, clock, "bench")
    when = datetime.now(UTC) - timedelta(hours=1)
    names = cloud_names(clouds)
    per = n // clouds
    done = 0
    for i, name in enumerate(names):
        count = n - done if i == len(names) - 1 else per
        at = when + timedelta(seconds=i)
        seeded = await seed_servers(
            db, project=project, cloud=name, n=count, flavor="1", when=at, addresses=True,
            prefix=f"web{i}",
        )  # fmt: skip
        if sims:
            await _seed_sim(settings, name, tmp, seeded, int(at.timestamp() * 1e6))
        done += count
    token, _ = await make_token(db)
    return Prepared(tmp, token, project), settings, db


async def _seed_sim(
    settings: Settings, name: str, data_dir: Path, seeded: list[Seeded], when_us: int
) -> None:
    drivers = build_drivers(settings, SystemClock())
    try:
        sim = drivers[name]
        assert isinstance(sim, SimCompute)
        await sim.capacity()  # creates the state file and its hosts
    finally:
        for d in drivers.values():
            await d.close()
    first = seed_sim(data_dir / f"sim-{name}.db", seeded, when_us=when_us)
    assert first == 1, "the sim's state file held servers already"


def add_floor(app: FastAPI, body: bytes) -> None:
    """GET FLOOR_PATH: `body`, prepared once, through the same app and middleware."""

    async def floor() -> Response:
        return Response(content=body, media_type="application/json")

    app.add_api_route(FLOOR_PATH, floor, methods=["GET"], include_in_schema=False)
