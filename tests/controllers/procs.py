"""Real `canopy worker` and `canopy up` processes for the tests that kill them."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import httpx
from sqlalchemy import func, select

from canopy.bootstrap import ensure_project, open_database, seed
from canopy.config import Settings, load_settings
from canopy.domain.clock import SystemClock
from canopy.domain.context import RequestContext
from canopy.store.db import Database
from canopy.store.models import Server

CANOPY = str(Path(sys.executable).with_name("canopy"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Process:
    """One canopy subprocess, logging to a file, started without the test run's CANOPY_*
    variables (plus `env`); kill -9 and restart at will."""

    def __init__(
        self, log: Path, command: Sequence[str], env: Mapping[str, str] | None = None
    ) -> None:
        self.log = log
        self.command = list(command)
        self.extra_env = dict(env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def _spawn(self, args: Sequence[str], env: Mapping[str, str]) -> None:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("CANOPY_")}
        clean.update(env)
        clean.update(self.extra_env)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [*self.command, *args], stdout=out, stderr=subprocess.STDOUT, env=clean
            )
        self.starts += 1

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def send(self, signum: int) -> None:
        """Send `signum`, if it still runs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signum)

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

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


class WorkerProcess(_Process):
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
        super().__init__(log, command, env)
        self.config = config

    def start(self) -> None:
        # A metrics port of 0: several workers (and test runs) at once.
        args = ["worker", "--config", str(self.config), "--log-level", "WARNING"]
        self._spawn(args, {"CANOPY_WORKER__METRICS_PORT": "0"})


class UpProcess(_Process):
    """One `canopy up` subprocess in `data_dir` (its config canopy.toml, its log up.log),
    on a fresh port at each start; kill -9 and restart at will."""

    def __init__(self, data_dir: Path, db_url: str, toml: str, *, args: Sequence[str] = ()) -> None:
        """`toml`: the configuration after its data_dir, [database] and [api] port; `args`:
        more arguments for `canopy up` (e.g. a log level)."""
        super().__init__(data_dir / "up.log", (CANOPY,))
        self.data_dir = data_dir
        self.db_url = db_url
        self.toml = toml
        self.config = data_dir / "canopy.toml"
        self.args = list(args)
        self.port = 0

    def write_config(self) -> Path:
        """The configuration, on a fresh port (each start writes it again)."""
        self.port = free_port()
        self.config.write_text(
            f"""data_dir = "{self.data_dir}"
[database]
url = "{self.db_url}"
[api]
port = {self.port}
"""
            + self.toml
        )
        return self.config

    def start(self) -> None:
        self.write_config()
        self._spawn(["up", "--config", str(self.config), *self.args], {})

    async def healthy(self, within: float = 60.0) -> None:
        """Until its /healthz answers 200; it must not exit meanwhile."""
        # Polling a real process is the point here; a fake clock cannot start one.
        deadline = time.monotonic() + within
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                assert self.alive(), self.tail()
                try:
                    r = await client.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1.0)
                    if r.status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"canopy up never became healthy:\n{self.tail()}")


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
