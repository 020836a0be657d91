"""`canopy api --workers N`: N API processes on one port on PostgreSQL; refused on SQLite
before anything is written. Real processes, a real database."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from canopy.cli.api_workers import WorkersRefused, check_workers
from canopy.config import load_settings

from .test_concurrent_start import CANOPY, START_DEADLINE, _env, empty_pg  # noqa: F401
from .test_up import free_port


def _children(pid: int) -> list[int]:
    """The live child processes of `pid` (Linux /proc)."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        out += [int(c) for c in text]
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_more_than_one_worker_is_refused_on_sqlite_before_anything_is_written(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    result = subprocess.run(
        [CANOPY, "api", "--workers", "3", "--data-dir", str(data)],
        capture_output=True,
        env=_env(CANOPY_API_PORT=str(free_port())),
        timeout=120,
    )
    assert result.returncode == 2, result
    err = result.stderr.decode()
    assert "--workers 3 needs PostgreSQL" in err and "--workers 1" in err, err
    assert not (data / "canopy.db").exists()


def test_the_check_itself() -> None:
    sqlite = load_settings(None, env={}, overrides={"database": {"url": "sqlite+aiosqlite:///x"}})
    pg = load_settings(None, env={}, overrides={"database": {"url": "postgresql+asyncpg://u@h/d"}})
    check_workers(sqlite, 1)
    check_workers(pg, 4)
    with pytest.raises(WorkersRefused, match="needs PostgreSQL"):
        check_workers(sqlite, 2)
    with pytest.raises(WorkersRefused, match="at least 1"):
        check_workers(pg, 0)


def test_two_workers_share_the_port_on_postgresql_and_stop_on_sigterm(
    empty_pg: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    config = tmp_path / "canopy.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n[database]\nurl = "{empty_pg}"\n')
    port = free_port()
    log = tmp_path / "api.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [CANOPY, "api", "--workers", "2", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_env(CANOPY_API_PORT=str(port)),
        )
    try:
        # Polling real processes is the point here; no fake clock can stand in for them.
        deadline = time.monotonic() + START_DEADLINE
        ok = False
        while time.monotonic() < deadline and not ok:
            if proc.poll() is not None:
                pytest.fail(f"exited with {proc.returncode}:\n{log.read_text()}")
            try:
                ok = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
            except httpx.TransportError:
                time.sleep(0.2)
        assert ok, log.read_text()
        apis = [c for c in _children(proc.pid) if "spawn_main" in _cmdline(c)]
        assert len(apis) == 2, (apis, [_cmdline(c) for c in _children(proc.pid)])
        for _ in range(20):  # every request answered, whichever process takes it
            assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log.read_text()
        for c in apis:
            assert not Path(f"/proc/{c}").exists() or "zombie" in _status(c)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _status(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().lower()
    except OSError:
        return ""
