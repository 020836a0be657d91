"""What a start checks before it writes anything, and the worker's own /metrics listener.

Real processes and real sockets: a port already in use is one clear line and nothing in the
data dir; `canopy worker` answers GET /metrics on its configured port.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .test_up import free_port

CANOPY = str(Path(sys.executable).with_name("canopy"))


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CANOPY_", "OS_"))}
    env["COLUMNS"] = "80"  # narrower than the message: it must stay one line anyway
    return env


@pytest.fixture
def occupied() -> Iterator[int]:
    """A port something else is listening on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CANOPY, *args], env=_env(), capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize("command", ["up", "api"])
def test_an_api_port_in_use_is_one_line_and_nothing_is_written(
    command: str, occupied: int, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    config = tmp_path / "canopy.toml"
    config.write_text(f'data_dir = "{data}"\n[api]\nport = {occupied}\n')
    done = _run(command, "--config", str(config))
    assert done.returncode == 2
    assert done.stdout == ""  # no banner
    lines = done.stderr.splitlines()
    assert lines == [
        f"error: cannot listen on 127.0.0.1:{occupied} for the API: the address is already "
        "in use (another canopy, or another program, listens there); stop it or set [api] "
        "port (or CANOPY_API_PORT) to a free port"
    ]
    assert not data.exists()  # stopped before the data dir, the database, the bootstrap


def test_a_worker_metrics_port_in_use_is_one_line(occupied: int, tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = tmp_path / "canopy.toml"
    config.write_text(f'data_dir = "{data}"\n[worker]\nmetrics_port = {occupied}\n')
    done = _run("worker", "--config", str(config))
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith(
        f"error: cannot listen on 127.0.0.1:{occupied} for the worker's /metrics: the address "
        "is already in use"
    )
    assert "[worker] metrics_port" in line
    assert not data.exists()


def test_the_worker_serves_metrics_on_its_own_port(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "canopy.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n[worker]\nmetrics_port = {port}\n')
    env = _env()
    env["COLUMNS"] = "200"
    proc = subprocess.Popen(
        [CANOPY, "worker", "--config", str(config), "--log-level", "WARNING"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )
    try:
        # Polling a real process is the point of this test.
        deadline = time.monotonic() + 60
        body = ""
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                out = proc.stdout.read() if proc.stdout else ""
                pytest.fail(f"canopy worker exited early with {proc.returncode}:\n{out}")
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1.0)
                if r.status_code == 200:
                    body = r.text
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        assert "canopy_database_up 1.0" in body
        assert 'canopy_cloud_healthy{cloud="private"}' in body
        assert httpx.get(f"http://127.0.0.1:{port}/nope", timeout=5).status_code == 404
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out
        assert f"metrics    http://127.0.0.1:{port}/metrics" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
