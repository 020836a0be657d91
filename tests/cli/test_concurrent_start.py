"""Two `canopy api` and two `canopy worker` started at the same moment on an empty
PostgreSQL database migrate once and all serve; then `canopy cloud list` with another
config changes no row. Real processes, a real database."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from canopy.store.db import Database
from canopy.store.migrate import head_revision
from tests.conftest import PG_ADMIN_URL

from .dump import dump
from .test_up import free_port

CANOPY = str(Path(sys.executable).with_name("canopy"))
START_DEADLINE = 120.0  # generous: the machine is shared, and four interpreters start at once


async def _admin(sql: str) -> None:
    admin = Database(PG_ADMIN_URL)
    try:
        async with admin.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(sql))
    finally:
        await admin.dispose()


@pytest.fixture
def empty_pg(pg_url: str) -> Iterator[str]:
    """A new PostgreSQL database with nothing in it (`pg_url` only proves the server is up
    and skips the test when it is not)."""
    name = f"canopy_start_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CANOPY_", "OS_"))}
    env.update(extra)
    return env


def _get(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=2.0).status_code
    except httpx.TransportError:
        return None


async def _facts(url: str) -> dict[str, object]:
    db = Database(url)
    try:
        async with db.engine.connect() as conn:

            async def one(sql: str) -> object:
                return (await conn.execute(text(sql))).scalar_one()

            return {
                "versions": (await conn.execute(text("SELECT version_num FROM alembic_version")))
                .scalars()
                .all(),
                "clouds": await one("SELECT count(*) FROM clouds"),
                "flavors": await one("SELECT count(*) FROM flavors"),
                "images": await one("SELECT count(*) FROM images"),
                "admin users": await one("SELECT count(*) FROM users WHERE name = 'admin'"),
                "admin projects": await one("SELECT count(*) FROM projects WHERE name = 'admin'"),
            }
    finally:
        await db.dispose()


def test_four_processes_on_an_empty_database_migrate_once_and_serve(
    empty_pg: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    config = tmp_path / "canopy.toml"
    config.write_text(f'data_dir = "{data}"\n[database]\nurl = "{empty_pg}"\n')
    api_ports = [free_port(), free_port()]
    metrics_ports = [free_port(), free_port()]
    commands = [
        ("api", _env(CANOPY_API_PORT=str(p)), f"http://127.0.0.1:{p}/healthz") for p in api_ports
    ] + [
        ("worker", _env(CANOPY_WORKER__METRICS_PORT=str(p)), f"http://127.0.0.1:{p}/metrics")
        for p in metrics_ports
    ]
    procs: list[tuple[subprocess.Popen[bytes], Path, str]] = []
    try:
        for i, (role, env, probe) in enumerate(commands):
            log = tmp_path / f"{role}-{i}.log"
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    [CANOPY, role, "--config", str(config), "--log-level", "WARNING"],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                )
            procs.append((proc, log, probe))

        # Polling real processes is the point here; nothing waits on a state a fake clock
        # could produce.
        deadline = time.monotonic() + START_DEADLINE
        pending = {probe for _, _, probe in procs}
        while pending and time.monotonic() < deadline:
            for proc, log, probe in procs:
                if proc.poll() is not None:
                    pytest.fail(f"{log.name} exited with {proc.returncode}:\n{log.read_text()}")
                if probe in pending and _get(probe) == 200:
                    pending.discard(probe)
            time.sleep(0.2)
        assert not pending, f"never answered: {sorted(pending)}"

        facts = asyncio.run(_facts(empty_pg))
        assert facts == {
            "versions": [head_revision()],
            "clouds": 2,  # the embedded default: private and public
            "flavors": 5,
            "images": 2,
            "admin users": 1,
            "admin projects": 1,
        }
    finally:
        for proc, _, _ in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc, log, _ in procs:
            try:
                code = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                pytest.fail(f"{log.name} did not stop within 30 s of SIGTERM")
            assert code == 0, f"{log.name} exited {code}:\n{log.read_text()}"
    for _, log, _ in procs:
        assert "Traceback" not in log.read_text(), log.read_text()

    # All stopped: nothing else writes. A read with another config changes no row.
    other = tmp_path / "other.toml"
    other.write_text(
        f'data_dir = "{data}"\n[database]\nurl = "{empty_pg}"\n'
        '[[clouds]]\nname = "elsewhere"\ntier = 2\n'
        '[[flavors]]\nname = "huge"\nvcpus = 64\nram_mb = 1024\n'
    )
    before = asyncio.run(dump(empty_pg))
    done = subprocess.run(
        [CANOPY, "cloud", "list", "--config", str(other)],
        env=_env(COLUMNS="200"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "private" in done.stdout and "public" in done.stdout
    assert "configured but not in the database yet: elsewhere" in done.stdout.replace("\n", "")
    assert asyncio.run(dump(empty_pg)) == before
