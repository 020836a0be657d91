"""Real `canopy worker` processes for the tests that kill them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

CANOPY = str(Path(sys.executable).with_name("canopy"))


class WorkerProcess:
    """One `canopy worker` subprocess, logging to a file; kill -9 and restart at will."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config = config
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CANOPY_")}
        env["CANOPY_WORKER__METRICS_PORT"] = "0"  # several workers (and test runs) at once
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [CANOPY, "worker", "--config", str(self.config), "--log-level", "WARNING"],
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
