"""Session-wide cloud emulators shared by every driver's tests and the behaviour suite:
one moto server (EC2) and one real Nova per test session, so no test pays for a second."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.interop.nova.harness import NovaUnavailable, RealNova, start_nova
from tests.providers.ec2.conftest import _free_port, client


@pytest.fixture(scope="session")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    env = {
        **os.environ,
        "MOTO_ENABLE_AMI_VALIDATION": "true",
        "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",  # tests register the AMIs they boot
    }
    server = Path(sys.executable).with_name("moto_server")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(server), "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/moto-api/", timeout=1.0)
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start: {log.read_text()}") from None
                time.sleep(0.05)
        # moto builds its EC2 backend on the first EC2 call (seconds): once, here.
        client(url).describe_availability_zones()
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def moto(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A clean moto, and credentials in the environment (moto accepts any)."""
    httpx.post(f"{moto_url}/moto-api/reset", timeout=10.0).raise_for_status()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
    return moto_url


@pytest.fixture
def ec2(moto: str) -> Any:
    return client(moto)


@pytest.fixture
def ami(ec2: Any) -> str:
    """An AMI registered in moto (validation is on: an unknown AMI is refused)."""
    image = ec2.register_image(Name="canopy-test", RootDeviceName="/dev/sda1")
    return str(image["ImageId"])


def nova_or_skip(tmp_dir: Path, **options: Any) -> RealNova:
    """`start_nova(tmp_dir, **options)`; the test skips, saying why, where the real Nova
    cannot run (fails under CI=true, where it must)."""
    try:
        nova = start_nova(tmp_dir, **options)
    except NovaUnavailable as e:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the real Nova must run under CI: {e}")
        pytest.skip(f"the real Nova cannot run here: {e}")
    if nova.install_seconds is not None:
        print(f"\nNova's virtualenv was built in {nova.install_seconds:.1f} s")
    return nova


@pytest.fixture(scope="session")
def real_nova(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealNova]:
    """A genuine Nova on a loopback port (see `nova_or_skip`)."""
    nova = nova_or_skip(tmp_path_factory.mktemp("nova"))
    try:
        yield nova
    finally:
        nova.stop()
