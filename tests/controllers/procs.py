"""Real `canopy worker` processes for the tests that kill them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from sqlalchemy import func, select

from canopy.bootstrap import ensure_project, open_database, seed
from canopy.config import Settings, load_settings
from canopy.domain.clock import SystemClock
from canopy.domain.context import RequestContext
from canopy.store.db import Database
from canopy.store.models import Server

CANOPY = str(Path(sys.executable).with_name("canopy"))


class WorkerProcess:
    """One `canopy worker` subprocess, logging to a file; kill -9 and restart at will."""

    def __init__(
        self,
        config: Path,
        log: Path,
        *,
        command: Sequence[str] = (CANOPY,),
        env: Mapping[str, str] | None = None,
    ) -> None:
        """`command`: what runs `canopy` (e.g. a test wrapper around its main); `env`:
        variables added to the worker's environment (canopy's own CANOPY_* are not kept)."""
        self.config = config
        self.log = log
        self.command = list(command)
        self.extra_env = dict(env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CANOPY_")}
        env["CANOPY_WORKER__METRICS_PORT"] = "0"  # several workers (and test runs) at once
        env.update(self.extra_env)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [*self.command, "worker", "--config", str(self.config), "--log-level", "WARNING"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        self.starts += 1

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=10)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


async def in_flight(db: Database) -> int:
    """Rows a worker is in the middle of: leased, or placed and not yet settled."""
    async with db.read() as s:
        q = (
            select(func.count())
            .select_from(Server)
            .where(Server.phase.in_(["schedule", "create", "converge", "delete", "reschedule"]))
        )
        return int((await s.execute(q)).scalar_one())


class Installed(NamedTuple):
    settings: Settings
    clock: SystemClock
    db: Database
    ctx: RequestContext


async def installed(config: Path, project: str) -> Installed:
    """The installation of `config` that worker processes will run, made ready from the
    test's side: its database migrated and seeded, and a project `project` without quota
    limits (the context of a user of it)."""
    settings = load_settings(config, env={})
    clock = SystemClock()
    db = await open_database(settings)
    await seed(db, settings, clock)
    project_id = await ensure_project(
        db, clock, project, quotas={"instances": -1, "cores": -1, "ram": -1}
    )
    return Installed(settings, clock, db, RequestContext(project_id=project_id, user_id="tester"))
