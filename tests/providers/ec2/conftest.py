"""moto's EC2 in server mode, on a free loopback port, for the ec2 driver's tests.

One `moto_server` process per test session (a subprocess: killed at the end), reset
before each test. AMI validation is on, so an unknown AMI fails as on AWS. moto never
reports a capacity or quota error by itself: tests inject them with a botocore event
hook on their own client (`inject`), never in canopy's code. moto also ignores
RunInstances' ClientToken; `aws_client_tokens` makes a client see AWS's behaviour (a
token already used returns the instance it made) for the tests that need it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

REGION = "us-east-1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


def client(url: str) -> Any:
    """A boto3 EC2 client on moto (the tests' own view of the cloud, and a hook point)."""
    import boto3

    return boto3.client(
        "ec2",
        region_name=REGION,
        endpoint_url=url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def ec2(moto: str) -> Any:
    return client(moto)


@pytest.fixture
def ami(ec2: Any) -> str:
    """An AMI registered in moto (validation is on: an unknown AMI is refused)."""
    image = ec2.register_image(Name="canopy-test", RootDeviceName="/dev/sda1")
    return str(image["ImageId"])


class _Response:
    def __init__(self, status: int) -> None:
        self.status_code = status
        self.headers: dict[str, str] = {}
        self.content = b""
        self.text = ""


def inject(
    ec2_client: Any,
    operation: str,
    code: str,
    *,
    when: Callable[[dict[str, Any]], bool] = lambda body: True,
    status: int = 400,
) -> list[dict[str, Any]]:
    """Make `operation` fail with EC2 error `code` whenever `when(request body)` holds.

    A botocore `before-call` hook that answers in place of the server: moto itself never
    says InsufficientInstanceCapacity. Returns the bodies the hook refused."""
    refused: list[dict[str, Any]] = []

    def hook(params: dict[str, Any], **_: Any) -> Any:
        body = dict(params.get("body") or {})
        if not when(body):
            return None
        refused.append(body)
        parsed = {
            "Error": {"Code": code, "Message": f"{code} (injected by the test)"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }
        return _Response(status), parsed

    ec2_client.meta.events.register(f"before-call.ec2.{operation}", hook)
    return refused


def aws_client_tokens(ec2_client: Any) -> dict[str, str]:
    """Give `ec2_client` AWS's ClientToken behaviour, which moto lacks: a RunInstances
    with a token already used answers with the instance that token made (whatever its
    state now) instead of making another. Returns token -> instance id."""
    made: dict[str, str] = {}
    viewer = client(ec2_client.meta.endpoint_url)

    def before(params: dict[str, Any], context: dict[str, Any], **_: Any) -> Any:
        token = (params.get("body") or {}).get("ClientToken")
        context["client_token"] = token
        if token not in made:
            return None
        found = viewer.describe_instances(InstanceIds=[made[token]])["Reservations"][0]
        return _Response(200), {"Instances": found["Instances"], "ResponseMetadata": {}}

    def after(parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        token = context.get("client_token")
        if token and parsed.get("Instances"):
            made.setdefault(token, parsed["Instances"][0]["InstanceId"])

    ec2_client.meta.events.register("before-call.ec2.RunInstances", before)
    ec2_client.meta.events.register("after-call.ec2.RunInstances", after)
    return made
