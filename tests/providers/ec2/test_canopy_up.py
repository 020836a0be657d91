"""End to end: a real `canopy up` with one ec2 cloud on moto. The `openstack` CLI boots
servers through canopy's Nova API; they become ACTIVE as EC2 instances tagged with their
canopy ids (a keypair imported on first use, under a name carrying its fingerprint), stop
and start, and are deleted, leaving no live instance in moto."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from canopy.providers.base import CANOPY_ID_TAG
from tests.interop.conftest import CanopyServer, start_canopy
from tests.providers.ec2.test_driver import public_key

pytestmark = pytest.mark.slow


def _toml(moto: str, ami: str) -> str:
    return f"""
[controllers]
poll_seconds = 0.05
sync_seconds = 0.3

[[clouds]]
name = "aws"
driver = "ec2"
concurrency = 8
[clouds.ec2]
region = "us-east-1"
endpoint_url = "{moto}"
zones = ["us-east-1b"]
instance_types = ["t3.*"]

[[images]]
name = "cirros"
[images.map]
aws = "{ami}"
"""


def _live(ec2: Any) -> dict[str, dict[str, Any]]:
    """moto's instances that are not terminated, by canopy id (None: untagged)."""
    out: dict[str, dict[str, Any]] = {}
    for r in ec2.describe_instances()["Reservations"]:
        for i in r["Instances"]:
            if i["State"]["Name"] in ("terminated", "shutting-down"):
                continue
            tags = {t["Key"]: t["Value"] for t in i.get("Tags", [])}
            out[tags.get(CANOPY_ID_TAG, i["InstanceId"])] = i
    return out


def _until(server: CanopyServer, name: str, status: str, timeout: float = 60.0) -> dict[str, Any]:
    # A real process: polling its API is the point here.
    deadline = time.monotonic() + timeout
    while True:
        shown = server.openstack("server", "show", name)
        if shown["status"] == status or time.monotonic() > deadline:
            return shown
        time.sleep(0.2)


def test_canopy_up_boots_and_deletes_on_ec2(moto: str, ec2: Any, ami: str, tmp_path: Path) -> None:
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": "/nonexistent/aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
    }
    server = start_canopy(tmp_path, extra_toml=_toml(moto, ami), env=env)
    try:
        osc = server.openstack
        keyfile = tmp_path / "k1.pub"
        keyfile.write_text(public_key() + "\n")
        osc("keypair", "create", "--public-key", str(keyfile), "k1")
        create = ("server", "create", "--wait", "--image", "cirros", "--flavor", "m1.tiny")
        a = osc(*create, "--nic", "none", "--key-name", "k1", "a")
        b = osc(*create, "--nic", "none", "b")
        assert a["status"] == "ACTIVE" and b["status"] == "ACTIVE", server.log()
        assert a["OS-EXT-AZ:availability_zone"] == "aws"

        live = _live(ec2)
        assert set(live) == {a["id"], b["id"]}
        inst = live[a["id"]]
        assert inst["InstanceType"] == "t3.nano"  # the cheapest t3 that fits m1.tiny
        assert inst["ImageId"] == ami
        assert inst["Placement"]["AvailabilityZone"] == "us-east-1b"
        keys = [k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]]
        assert len(keys) == 1 and inst["KeyName"] == keys[0]
        assert "k1" in keys[0]

        osc("server", "stop", "a", json_output=False)
        assert _until(server, "a", "SHUTOFF")["status"] == "SHUTOFF"
        assert _live(ec2)[a["id"]]["State"]["Name"] == "stopped"
        osc("server", "start", "a", json_output=False)
        assert _until(server, "a", "ACTIVE")["status"] == "ACTIVE"

        osc("server", "delete", "--wait", "a", "b", json_output=False)
        assert osc("server", "list") == []
        assert _live(ec2) == {}  # nothing leaked
        server.assert_running()
    finally:
        server.stop()
