"""`canopy up` as a real process: it serves /healthz, shows its banner, stops on SIGTERM."""

from __future__ import annotations

import contextlib
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


def _big_header_answer(port: int, size: int) -> bytes:
    """The status line and what follows, for GET /healthz with one header of `size` bytes."""
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * size + b"\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        with contextlib.suppress(ConnectionResetError):  # refused before it was all sent
            s.sendall(request)
        chunks = []
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
                if b"\r\n\r\n" in b"".join(chunks):
                    break
        except ConnectionResetError:
            pass
    return b"".join(chunks)


def _smuggle_answers(port: int) -> tuple[bytes, bool]:
    """What the server sends for a token request framed by both a Content-Length and
    chunks, whose chunked body ends before a second request; and whether it then closed
    the connection (within 5 s)."""
    request = (
        b"POST /identity/v3/auth/tokens HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(request)
        chunks = []
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            return b"".join(chunks), False
    return b"".join(chunks), True


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
        # It serves on uvloop's loop (canopy/event_loop.py): what the process has loaded
        # says so, where /proc does.
        maps = Path(f"/proc/{proc.pid}/maps")
        if maps.exists() and importlib.util.find_spec("uvloop") is not None:
            assert "uvloop/loop." in maps.read_text()
        # HTTP is parsed by h11 whatever else is installed (cli/serve.py `_server`): a
        # header block that h11 could not parse within its 16 KiB past what one read
        # brings is refused (a 400, or the connection reset while it is still being sent),
        # not buffered whole; and the server goes on.
        refused = _big_header_answer(port, 1 << 20)
        assert refused == b"" or refused.startswith(b"HTTP/1.1 400 "), refused[:200]
        assert _big_header_answer(port, 8 << 10).startswith(b"HTTP/1.1 200 ")
        # A body framed both ways (request_guard.py): one answer, then the connection is
        # closed, so what h11 would read as a next request is never served.
        answers, closed = _smuggle_answers(port)
        assert answers.count(b"HTTP/1.1 ") == 1, answers
        assert answers.startswith(b"HTTP/1.1 400 ")
        assert closed

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
