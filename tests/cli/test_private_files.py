"""The data dir is 0700 and every file with secrets in it 0600: under a permissive umask,
and when they already exist with looser modes (fixed, and said so)."""

from __future__ import annotations

import logging
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from canopy.cli.main import app

from .test_up import free_port

CANOPY = str(Path(sys.executable).with_name("canopy"))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def secret_files(data: Path) -> dict[str, int]:
    """Every file in the data dir (all of them hold something private) -> its mode."""
    return {p.name: mode(p) for p in sorted(data.iterdir()) if p.is_file()}


def test_up_under_umask_0_makes_everything_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    config = tmp_path / "canopy.toml"
    config.write_text(f'data_dir = "{data}"\n[api]\nport = {port}\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CANOPY_", "OS_"))}
    proc = subprocess.Popen(
        [CANOPY, "up", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
        preexec_fn=lambda: os.umask(0),  # everything created would be 0666 / 0777
    )
    try:
        # Polling a real process is the point of this test.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                out = proc.stdout.read() if proc.stdout else ""
                pytest.fail(f"canopy up exited early with {proc.returncode}:\n{out}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        files = secret_files(data)
        # While it runs: the database in WAL mode with its -wal and -shm, each sim cloud's
        # state file, and the clouds.yaml with the admin's password.
        for name in ("canopy.db", "canopy.db-wal", "canopy.db-shm", "clouds.yaml"):
            assert name in files, sorted(files)
        assert {"sim-private.db", "sim-public.db"} <= set(files)
        assert files == dict.fromkeys(files, 0o600)
        assert mode(data) == 0o700
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def test_looser_modes_found_at_start_are_tightened_and_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in list(os.environ):
        if key.startswith("CANOPY_"):
            monkeypatch.delenv(key)
    data = tmp_path / "data"
    first = CliRunner().invoke(app, ["db", "upgrade", "--data-dir", str(data)])
    assert first.exit_code == 0, first.output
    # As an older canopy, a copy or an editor would have left them.
    data.chmod(0o755)
    (data / "canopy.db").chmod(0o644)
    (data / "canopy.db-wal").write_bytes(b"")
    (data / "canopy.db-wal").chmod(0o664)
    (data / "clouds.yaml").write_text("clouds: {}\n")
    (data / "clouds.yaml").chmod(0o644)
    (data / "sim-private.db").write_bytes(b"")
    (data / "sim-private.db").chmod(0o666)
    (data / "secret.key").write_bytes(b"k")
    (data / "secret.key").chmod(0o640)

    with caplog.at_level(logging.WARNING, logger="canopy.files"):
        again = CliRunner().invoke(app, ["db", "upgrade", "--data-dir", str(data)])
    assert again.exit_code == 0, again.output
    assert mode(data) == 0o700
    files = secret_files(data)
    # (SQLite removes the empty -wal when the last connection closes.)
    for name in ("canopy.db", "clouds.yaml", "sim-private.db", "secret.key"):
        assert files[name] == 0o600, (name, oct(files[name]))
    for path, was in (
        (data, "0755"),
        (data / "canopy.db", "0644"),
        (data / "canopy.db-wal", "0664"),
        (data / "clouds.yaml", "0644"),
        (data / "sim-private.db", "0666"),
        (data / "secret.key", "0640"),
    ):
        assert f"{path} was mode {was}" in caplog.text, caplog.text
    # Nothing left to fix: a second start says nothing.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="canopy.files"):
        assert CliRunner().invoke(app, ["db", "upgrade", "--data-dir", str(data)]).exit_code == 0
    assert "was mode" not in caplog.text
