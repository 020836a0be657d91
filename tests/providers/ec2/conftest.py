"""moto's EC2 in server mode, on a free loopback port, for the ec2 driver's tests.

One `moto_server` process per test session (a subprocess: killed at the end), reset
before each test. AMI validation is on, so an unknown AMI fails as on AWS. moto never
reports a capacity or quota error by itself: tests inject them with a botocore event
hook on their own client (`inject`), never in canopy's code. moto also ignores
RunInstances' ClientToken; `aws_client_tokens` makes a client see AWS's behaviour (a
token already used returns the instance it made) for the tests that need it.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

REGION = "us-east-1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
