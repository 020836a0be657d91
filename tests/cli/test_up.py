"""`canopy up` as a real process: it serves /healthz, shows its banner, stops on SIGTERM."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_up_serves_health_and_stops_on_sigterm(tmp_path: Path) -> None:
    pytest.importorskip("canopy.api.app", reason="the API app is not written yet")
    canopy = Path(sys.executable).parent / "canopy"
    assert canopy.exists(), f"no console script at {canopy}"
    port = free_port()
    config = tmp_path / "canopy.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n[api]\nport = {port}\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("CANOPY_")}
    env["COLUMNS"] = "200"
    proc = subprocess.Popen(
        [str(canopy), "up", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )
    try:
        # Polling a real process is the point of this test; nothing here waits for a state
        # that a fake clock could produce.
        deadline = time.monotonic() + 30
        status = None
        body: object = None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                out = proc.stdout.read() if proc.stdout else ""
                pytest.fail(f"canopy up exited early with {proc.returncode}:\n{out}")
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1.0)
                status, body = r.status_code, r.json()
                if status == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        assert status == 200, f"/healthz never answered 200 (last: {status})"
        assert body == {"status": "ok", "database": "ok"}
        assert (tmp_path / "data" / "canopy.db").is_file()
        # It serves on uvloop's loop and httptools' parser (canopy/event_loop.py): what
        # the process has loaded says so, where /proc does.
        maps = Path(f"/proc/{proc.pid}/maps")
        if maps.exists() and importlib.util.find_spec("uvloop") is not None:
            loaded = maps.read_text()
            assert "uvloop/loop." in loaded
            assert "httptools/parser/parser." in loaded

        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            pytest.fail("canopy up did not stop within 15 s of SIGTERM")
        assert proc.returncode == 0, out
        assert "canopy is running (API + controllers)" in out
        assert "private" in out and "driver=sim tier=0" in out
        assert "public" in out and "driver=sim tier=1" in out
        assert f"http://127.0.0.1:{port}/healthz" in out.replace("\n", "")
        assert "Traceback" not in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
