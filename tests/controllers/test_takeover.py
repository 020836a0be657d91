"""Takeover after a crash: a `canopy up` killed with SIGKILL while servers are being built
and deleted leaves its rows leased; the restarted process takes them over within seconds.

The leases are short (10 s by default) because they are renewed while a step runs; before
that, a dead worker's rows sat for the old 60 s lease (servers in BUILD and `deleting` for
a minute after a restart). The process runs with the default lease length on purpose.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
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

pytestmark = pytest.mark.slow

CANOPY = str(Path(sys.executable).with_name("canopy"))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Up:
    """A `canopy up` process on a fresh port each start; its output goes to a log file."""

    def __init__(self, tmp_path: Path, db_url: str) -> None:
        self.tmp_path = tmp_path
        self.db_url = db_url
        self.config = tmp_path / "canopy.toml"
        self.log = tmp_path / "up.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def write_config(self) -> Path:
        # Calls take a second each, three at a time per cloud: a kill always finds steps
        # in flight. No lease length is set: the default is what is tested.
        self.port = _free_port()
        self.config.write_text(
            f"""data_dir = "{self.tmp_path}"
[database]
url = "{self.db_url}"
[api]
port = {self.port}
[controllers]
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
        )
        return self.config

    def start(self) -> None:
        self.write_config()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CANOPY_")}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [CANOPY, "up", "--config", str(self.config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )

    async def healthy(self, within: float = 60.0) -> None:
        # Polling a real process is the point here; a fake clock cannot start one.
        deadline = time.monotonic() + within
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                assert self.proc is not None and self.proc.poll() is None, self.tail()
                try:
                    r = await client.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1.0)
                    if r.status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"canopy up never became healthy:\n{self.tail()}")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


async def _rows(db: Database) -> list[Server]:
    async with db.read() as s:
        return list((await s.execute(select(Server))).scalars())


async def _wait(
    db: Database, up: _Up, done: Callable[[list[Server]], bool], within: float, what: str
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
    up = _Up(tmp_path, db_url)
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
