"""A real Nova for tests: its own pinned virtualenv, started as a subprocess.

`start_nova()` builds (once, cached) the virtualenv of `requirements.txt` under
`~/.cache/canopy-nova-venv/<hash of requirements.txt>` (`CANOPY_NOVA_VENV_ROOT` moves
it), starts `nova_server.py` in it on a free loopback port and waits for that port.
`NovaUnavailable` says why it could not (no network for pip, a Python Nova does not
support, the harness dying at start); the fixture skips with that reason, or fails when
`CI=true`, where the real Nova must run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements.txt"
INSTALL_TIMEOUT = 600.0  # seconds for pip to build the venv (about 35 s on a quiet machine)
START_TIMEOUT = 120.0  # seconds from the process start to its port answering


class NovaUnavailable(Exception):
    """The real Nova cannot run here; the message says why."""


@dataclass
class RealNova:
    """A running Nova: its API at `url` (…/v2.1), the project it serves, a bootable image."""

    url: str
    project_id: str
    image: str
    process: subprocess.Popen[bytes]
    log_path: Path
    install_seconds: float | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def http(self) -> httpx.Client:
        """A plain HTTP client on Nova's API, as an operator's tool would be."""
        return httpx.Client(
            base_url=self.url,
            headers={"X-Auth-Token": "operator", "OpenStack-API-Version": "compute 2.79"},
            timeout=30,
        )

    def served(self) -> dict[str, tuple[int, float]]:
        """The harness's own count of the requests it has answered (`GET /_harness/calls`
        of nova_server.py): method and path template -> (count, seconds spent)."""
        return {k: (int(v[0]), float(v[1])) for k, v in self._calls().items()}

    def statuses(self, key: str) -> dict[str, int]:
        """How the harness answered the requests of one `served()` key, by status ("202",
        "500", ..., or "none": the app raised before it answered)."""
        return {str(k): int(v) for k, v in self._calls().get(key, [0, 0.0, {}])[2].items()}

    def _calls(self) -> dict[str, Any]:
        root = self.url.rsplit("/v2.1", 1)[0]
        r = httpx.get(f"{root}/_harness/calls", timeout=30)
        r.raise_for_status()
        calls: dict[str, Any] = r.json()
        return calls

    def archive_deleted(self) -> str:
        """Archive every deleted server's rows, as `nova-manage db archive_deleted_rows`
        does (`POST /_harness/archive` of nova_server.py); the command's report."""
        root = self.url.rsplit("/v2.1", 1)[0]
        r = httpx.post(f"{root}/_harness/archive", timeout=60)
        if r.status_code != 200:
            raise AssertionError(f"archiving failed: {r.status_code} {r.text}")
        return str(r.json()["report"])

    def raise_quotas(self) -> None:
        """Quotas no test reaches (Nova's defaults allow 10 instances a project)."""
        big = {"instances": 10000, "cores": 20000, "ram": 100_000_000}
        with self.http() as http:
            r = http.put(f"/os-quota-sets/{self.project_id}", json={"quota_set": big})
            r.raise_for_status()

    def make_zones(self, hosts: Mapping[str, str]) -> None:
        """Put each compute host (`compute`, `compute2`…) in its availability zone, host ->
        zone, as an operator does: an aggregate per zone (os-aggregates, admin)."""
        with self.http() as http:
            for host, zone in hosts.items():
                body = {"aggregate": {"name": f"{zone}-{host}", "availability_zone": zone}}
                r = http.post("/os-aggregates", json=body)
                r.raise_for_status()
                added = {"add_host": {"host": host}}
                r = http.post(f"/os-aggregates/{r.json()['aggregate']['id']}/action", json=added)
                r.raise_for_status()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        if self._log is not None:
            self._log.close()


def venv_dir() -> Path:
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:16]
    root = Path(os.environ.get("CANOPY_NOVA_VENV_ROOT", "~/.cache/canopy-nova-venv"))
    return root.expanduser() / digest


def _python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_venv() -> tuple[Path, float | None]:
    """The Nova virtualenv, built if missing; and how long building it took (None: cached)."""
    venv = venv_dir()
    done = venv / ".complete"
    if done.exists():
        return venv, None
    if venv.exists():
        shutil.rmtree(venv)  # a build that did not finish
    venv.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    base = getattr(sys, "_base_executable", sys.executable)
    try:
        subprocess.run([base, "-m", "venv", str(venv)], check=True, capture_output=True)
        subprocess.run(
            # The file pins every package: no resolver run (--no-deps), pip's cache reused.
            [
                str(_python(venv)),
                *("-m", "pip", "install", "-q", "--no-deps", "--disable-pip-version-check"),
                *("-r", str(REQUIREMENTS)),
            ],
            check=True,
            capture_output=True,
            timeout=INSTALL_TIMEOUT,
        )
    except subprocess.TimeoutExpired as e:
        shutil.rmtree(venv, ignore_errors=True)
        raise NovaUnavailable(f"installing Nova took over {INSTALL_TIMEOUT:.0f} s") from e
    except subprocess.CalledProcessError as e:
        shutil.rmtree(venv, ignore_errors=True)
        tail = (e.stderr or b"").decode(errors="replace")[-1500:]
        raise NovaUnavailable(f"could not install Nova's virtualenv: {tail}") from e
    site = next((venv / "lib").glob("python3*/site-packages"))
    # Nova looks for api-paste.ini under <site-packages>/etc; the wheel puts it in <venv>/etc.
    with contextlib.suppress(FileExistsError):
        (site / "etc").symlink_to(venv / "etc")
    done.write_text("")
    return venv, time.monotonic() - started


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_nova(
    tmp_dir: Path, *, compute_driver: str | None = None, compute_hosts: int = 1
) -> RealNova:
    """Start Nova on a free port and wait until its API answers. `compute_driver` (e.g.
    "fake.FakeDriver", a host of 1,000 vcpus) replaces the harness's default fake compute,
    which holds 8 m1.tiny servers: the behaviour tests rely on running out.
    `compute_hosts` > 1 starts that many compute services (hypervisors)."""
    venv, took = ensure_venv()
    port = _free_port()
    log_path = tmp_dir / "nova.log"
    log = log_path.open("wb")
    out_path = tmp_dir / "nova.out"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "PYTHON"))}
    env.update(NOVA_PORT=str(port), PYTHONPATH=str(HERE), PYTHONUNBUFFERED="1")
    if compute_driver is not None:
        env["NOVA_COMPUTE_DRIVER"] = compute_driver
    if compute_hosts > 1:
        env["NOVA_COMPUTE_HOSTS"] = str(compute_hosts)
    with out_path.open("wb") as out:
        proc = subprocess.Popen(
            [str(_python(venv)), "-m", "testtools.run", "nova_server.NovaServer"],
            cwd=tmp_dir,
            env=env,
            stdout=out,
            stderr=log,
            start_new_session=True,
        )
    nova = RealNova(
        url=f"http://127.0.0.1:{port}/v2.1",
        project_id="",
        image="",
        process=proc,
        log_path=log_path,
        install_seconds=took,
        _log=log,
    )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            nova.stop()
            raise NovaUnavailable(
                f"the Nova harness exited with {proc.returncode}: {nova.log()[-2000:]}"
            )
        lines = [x for x in out_path.read_text().splitlines() if x.startswith("{")]
        if lines:
            info: dict[str, Any] = json.loads(lines[0])
            nova.project_id, nova.image = str(info["project_id"]), str(info["image"])
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code < 500:
                    return nova
        time.sleep(0.2)
    nova.stop()
    raise NovaUnavailable(f"Nova did not answer within {START_TIMEOUT:.0f} s: {nova.log()[-2000:]}")
