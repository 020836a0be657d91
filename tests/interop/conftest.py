"""A real `canopy up` process for tests that drive real OpenStack clients against it.

Use the module-scoped fixture `canopy_server` (one process per test module, so modules do
not see each other's projects, users or servers):

    def test_flavors(canopy_server: CanopyServer) -> None:
        flavors = canopy_server.openstack("flavor", "list")          # parsed `-f json`
        assert {f["Name"] for f in flavors} >= {"m1.tiny"}
        canopy_server.openstack("server", "delete", "vm1", json_output=False)  # prints nothing
        rc, err = canopy_server.openstack_fail("server", "show", "nope")
        assert rc == 1 and "No Server found" in err
        conn = canopy_server.sdk()                                     # openstacksdk, in-process

What the process is: the `canopy` console script next to `sys.executable`, a temporary
data dir, SQLite, a free port, `CANOPY_ADMIN_PASSWORD` set (user `admin` with the admin
role on project `admin`), and two fast sim clouds: `private` (tier 0, 2 hosts of 8 vcpus)
and `public` (tier 1, priced), booting in ~0.5 s, with controllers polling every 50 ms.
Its output goes to `<tmp>/canopy.log` (`server.log()`), which failure messages include.
For another configuration, call `start_canopy(tmp_dir, extra_toml=...)` yourself and
`stop()` it when done.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from . import warm_cli

BIN = Path(sys.executable).parent
ADMIN_PASSWORD = "canopy-interop-admin"
REGION = "RegionOne"
START_TIMEOUT = 60.0  # seconds for /healthz to answer after the process starts
COMMAND_TIMEOUT = 120.0  # seconds for one `openstack` command

FAST_CLOUDS = """
[controllers]
poll_seconds = 0.05
sync_seconds = 0.3

[[clouds]]
name = "private"
tier = 0
[clouds.sim]
hosts = 2
host_vcpus = 8
host_ram_mb = 32768
boot_seconds = 0.5
action_seconds = 0.2
api_latency_ms = 5

[[clouds]]
name = "public"
tier = 1
[clouds.sim]
hosts = 100
host_vcpus = 64
host_ram_mb = 262144
boot_seconds = 0.5
action_seconds = 0.2
api_latency_ms = 5
price_per_vcpu_hour = 0.048
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _clean_environ() -> dict[str, str]:
    """The caller's environment without any CANOPY_* or OS_* variable that could leak in."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("CANOPY_", "OS_"))}


@dataclass
class CanopyServer:
    """A running `canopy up` and the means to talk to it as the admin."""

    base_url: str
    data_dir: Path
    admin_password: str
    process: subprocess.Popen[bytes]
    log_path: Path
    region: str = REGION
    _log_file: Any = field(default=None, repr=False)

    @property
    def auth_url(self) -> str:
        return f"{self.base_url}/identity"

    @property
    def clouds_yaml(self) -> Path:
        """The clouds.yaml `canopy up` wrote (entry `canopy`, the admin)."""
        return self.data_dir / "clouds.yaml"

    def log(self) -> str:
        """Everything the process has printed so far."""
        return self.log_path.read_text(errors="replace")

    def env(
        self,
        *,
        username: str = "admin",
        password: str | None = None,
        project: str = "admin",
        **extra: str,
    ) -> dict[str, str]:
        """The environment an `openstack` command needs (OS_* for `username` on `project`,
        the admin by default); `extra` adds or overrides variables (e.g. OS_COMPUTE_API_VERSION)."""
        env = _clean_environ()
        env.update(
            OS_AUTH_URL=self.auth_url,
            OS_USERNAME=username,
            OS_PASSWORD=self.admin_password if password is None else password,
            OS_PROJECT_NAME=project,
            OS_USER_DOMAIN_NAME="Default",
            OS_PROJECT_DOMAIN_NAME="Default",
            OS_IDENTITY_API_VERSION="3",
            OS_INTERFACE="public",
            OS_REGION_NAME=self.region,
        )
        env.update(extra)
        return env

    def run_openstack(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = COMMAND_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """Run `openstack ARGS` as is; the caller judges the outcome."""
        self.assert_running()
        return warm_cli.run(list(args), self.env() if env is None else env, timeout)

    def openstack(
        self, *args: str, env: dict[str, str] | None = None, json_output: bool = True
    ) -> Any:
        """Run `openstack ARGS -f json` and return the parsed output; the command must
        succeed. Pass `json_output=False` for commands without a formatter (role add,
        delete, set ...): then the plain stdout is returned."""
        argv = [*args, "-f", "json"] if json_output else list(args)
        done = self.run_openstack(*argv, env=env)
        if done.returncode != 0:
            pytest.fail(
                f"`openstack {' '.join(argv)}` exited {done.returncode}\n"
                f"--- stderr ---\n{done.stderr}\n--- stdout ---\n{done.stdout}\n"
                f"--- canopy log (tail) ---\n{self.log()[-3000:]}"
            )
        if json_output and done.stdout.strip():
            return json.loads(done.stdout)
        return done.stdout

    def openstack_fail(self, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
        """Run `openstack ARGS`, which must fail; its exit code and stderr."""
        done = self.run_openstack(*args, env=env)
        if done.returncode == 0:
            pytest.fail(f"`openstack {' '.join(args)}` succeeded:\n{done.stdout}")
        return done.returncode, done.stderr

    def sdk(
        self, *, username: str = "admin", password: str | None = None, project: str = "admin"
    ) -> Any:
        """An openstacksdk Connection (in this process) for `username` on `project`."""
        import openstack

        return openstack.connect(
            auth_url=self.auth_url,
            username=username,
            password=self.admin_password if password is None else password,
            project_name=project,
            user_domain_name="Default",
            project_domain_name="Default",
            region_name=self.region,
            interface="public",
            identity_api_version="3",
        )

    def token(
        self, username: str = "admin", password: str | None = None, project: str = "admin"
    ) -> str:
        """A token from POST /identity/v3/auth/tokens, for raw HTTP calls."""
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": username,
                            "domain": {"name": "Default"},
                            "password": self.admin_password if password is None else password,
                        }
                    },
                },
                "scope": {"project": {"name": project, "domain": {"name": "Default"}}},
            }
        }
        r = httpx.post(f"{self.auth_url}/v3/auth/tokens?nocatalog", json=body, timeout=30)
        assert r.status_code == 201, r.text
        return r.headers["X-Subject-Token"]

    def assert_running(self) -> None:
        if self.process.poll() is not None:
            pytest.fail(f"canopy up exited with {self.process.returncode}:\n{self.log()}")

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, then SIGKILL if it has not stopped within `timeout`; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log_file is not None:
            self._log_file.close()
        return self.process.returncode


def start_canopy(
    tmp_dir: Path,
    *,
    extra_toml: str = FAST_CLOUDS,
    admin_password: str = ADMIN_PASSWORD,
    env: dict[str, str] | None = None,
) -> CanopyServer:
    """Start `canopy up` in `tmp_dir` on a free port and wait until /healthz answers 200."""
    canopy = BIN / "canopy"
    if not canopy.exists():
        pytest.skip(f"no canopy console script at {canopy} (pip install -e .)")
    if not (BIN / "openstack").exists():
        pytest.skip(f"python-openstackclient is not installed next to {sys.executable}")
    last_error = ""
    for _ in range(3):  # a free port can be taken by someone else before canopy binds it
        port = free_port()
        data_dir = tmp_dir / "data"
        config = tmp_dir / "canopy.toml"
        config.write_text(f'data_dir = "{data_dir}"\n[api]\nport = {port}\n{extra_toml}')
        log_path = tmp_dir / "canopy.log"
        log_file = log_path.open("wb")
        proc_env = {**_clean_environ(), "CANOPY_ADMIN_PASSWORD": admin_password, "COLUMNS": "200"}
        proc_env.update(env or {})
        proc = subprocess.Popen(
            [str(canopy), "up", "--config", str(config), "--log-level", "WARNING"],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=proc_env,
            cwd=tmp_dir,
        )
        server = CanopyServer(
            base_url=f"http://127.0.0.1:{port}",
            data_dir=data_dir,
            admin_password=admin_password,
            process=proc,
            log_path=log_path,
            _log_file=log_file,
        )
        if _wait_healthy(server):
            return server
        last_error = server.log()
        server.stop()
        if "address already in use" not in last_error.lower():
            break
    pytest.fail(f"canopy up did not become healthy within {START_TIMEOUT:.0f} s:\n{last_error}")


def _wait_healthy(server: CanopyServer) -> bool:
    # Polling a real process is the point here; nothing waits on a fake-clock state.
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{server.base_url}/healthz", timeout=2.0).status_code == 200:
                return True
        time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def canopy_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CanopyServer]:
    """A running `canopy up` for this test module; stopped with SIGTERM afterwards."""
    server = start_canopy(tmp_path_factory.mktemp("canopy"))
    try:
        yield server
    finally:
        server.stop()
