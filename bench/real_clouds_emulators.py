"""The emulators `bench.real_clouds` boots on, each with its bound: moto's EC2 server (a
subprocess on a loopback port) and a genuine Nova (its functional harness)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from canopy.providers.base import CANOPY_ID_META, CANOPY_ID_TAG

CONCURRENCY = 16
POLL = 0.05
HOSTS = 10  # the Nova harness's compute services
REGION = "us-east-1"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# The emulators ------------------------------------------------------------------------


@contextmanager
def moto_server() -> Iterator[tuple[str, int]]:
    port = _free_port()
    env = {**os.environ, "MOTO_EC2_LOAD_DEFAULT_AMIS": "false"}
    server = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen(
        [str(server), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
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
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.05)
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def ec2_client(url: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "ec2",
        region_name=REGION,
        endpoint_url=url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(max_pool_connections=CONCURRENCY),
    )


class Moto:
    """moto's EC2: `bound()` boots N instances as fast as it takes them."""

    name = "moto"
    concurrency = CONCURRENCY

    def __init__(self, url: str, pid: int) -> None:
        self.url = url
        self.pid = pid
        self.client = ec2_client(url)
        self.ami = self._register()
        os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
        os.environ.pop("AWS_PROFILE", None)

    def cloud(self) -> dict[str, Any]:
        return {
            "name": "aws",
            "driver": "ec2",
            "tier": 0,
            "concurrency": CONCURRENCY,
            "ec2": {
                "region": REGION,
                "endpoint_url": self.url,
                "zones": ["us-east-1a"],
                "instance_types": ["t3.*"],
            },
        }

    def image(self) -> str:
        return self.ami

    def bound(self, n: int) -> float:
        def boot(i: int) -> None:
            self.client.run_instances(
                ImageId=self.ami,
                InstanceType="t3.nano",
                MinCount=1,
                MaxCount=1,
                ClientToken=str(uuid.uuid4()),
                Placement={"AvailabilityZone": "us-east-1a"},
                TagSpecifications=[
                    {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": f"b-{i}"}]}
                ],
            )

        t0 = time.perf_counter()
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            list(pool.map(boot, range(n)))
        while self._live(lambda i: i["State"]["Name"] == "running") < n:
            time.sleep(POLL)
        return time.perf_counter() - t0

    def _instances(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for page in self.client.get_paginator("describe_instances").paginate():
            for r in page["Reservations"]:
                out.extend(r["Instances"])
        return [i for i in out if i["State"]["Name"] not in ("terminated", "shutting-down")]

    def _live(self, keep: Callable[[dict[str, Any]], bool]) -> int:
        return sum(1 for i in self._instances() if keep(i))

    def tagged(self) -> int:
        def has_tag(i: dict[str, Any]) -> bool:
            return any(t["Key"] == CANOPY_ID_TAG for t in i.get("Tags", []))

        return self._live(has_tag)

    def _register(self) -> str:
        return str(self.client.register_image(Name="bench", RootDeviceName="/dev/sda1")["ImageId"])

    def clear(self) -> None:
        """Empty moto (its reset), so each run starts alike: terminated instances stay
        listed in moto, and the next run's listings would describe them again."""
        httpx.post(f"{self.url}/moto-api/reset", timeout=30.0).raise_for_status()
        self.ami = self._register()


class Nova:
    """A genuine Nova (nova's functional harness, tests/interop/nova): `bound()` boots N
    servers through its API as fast as it takes them, then waits for ACTIVE."""

    name = "nova"
    # The harness serves its API as nova-api does under eventlet (a green thread per
    # request) and casts to its conductor and computes: as many clients as on moto.
    concurrency = CONCURRENCY

    def __init__(self, tmp: Path) -> None:
        from tests.interop.nova.harness import start_nova

        # The harness's default compute holds 8 m1.tiny servers. FakeDriver's hosts hold
        # 1,000 vcpus and 800 GB each; ten of them, because Nova's resource tracker reads
        # the allocations of every server on its host at each claim (one placement call a
        # server): on a single host the 200th boot would make 200 of them.
        self.nova = start_nova(tmp, compute_driver="fake.FakeDriver", compute_hosts=HOSTS)
        self.pid = self.nova.process.pid
        self.yaml = tmp / "clouds.yaml"
        self.yaml.write_text(
            "clouds:\n  nova:\n    auth_type: none\n"
            f"    compute_endpoint_override: {self.nova.url}\n    region_name: RegionOne\n"
        )
        self.nova.raise_quotas()

    def stop(self) -> None:
        self.nova.stop()

    def cloud(self) -> dict[str, Any]:
        return {
            "name": "nova",
            "driver": "openstack",
            "tier": 0,
            "concurrency": self.concurrency,
            "openstack": {
                "cloud": "nova",
                "clouds_yaml": str(self.yaml),
                "schedule_poll_seconds": 0.05,
            },
        }

    def image(self) -> str:
        return self.nova.image

    def served(self) -> dict[str, tuple[int, float]]:
        """The harness's own count of the requests it has answered (nova_server.py)."""
        return self.nova.served()

    def _servers(self) -> list[dict[str, Any]]:
        with self.nova.http() as http:
            r = http.get("/servers/detail", params={"limit": 1000})
            r.raise_for_status()
            return list(r.json()["servers"])

    def _any(self, params: dict[str, Any]) -> bool:
        """Whether Nova lists at least one server matching `params` (a page of one)."""
        with self.nova.http() as http:
            r = http.get("/servers", params={**params, "limit": 1})
            r.raise_for_status()
            return bool(r.json()["servers"])

    def bound(self, n: int) -> float:
        def boot(i: int) -> None:
            body = {
                "name": f"b-{i}",
                "imageRef": self.nova.image,
                "flavorRef": "1",
                "networks": "none",
            }
            with self.nova.http() as http:
                r = http.post(
                    "/servers",
                    json={"server": body},
                    headers={"OpenStack-API-Version": "compute 2.37"},
                )
                r.raise_for_status()

        t0 = time.perf_counter()
        with ThreadPoolExecutor(self.concurrency) as pool:
            list(pool.map(boot, range(n)))
        # Waits with a page of one server still in BUILD (build requests included): a full
        # listing every 50 ms costs Nova about a second of CPU each at 200 servers and
        # would starve the builds it waits for.
        while self._any({"status": "BUILD"}):
            time.sleep(POLL)
        took = time.perf_counter() - t0
        status = [s["status"] for s in self._servers()]
        if status.count("ACTIVE") != n:
            raise RuntimeError(f"Nova has {status.count('ACTIVE')} of {n} servers ACTIVE")
        return took

    def tagged(self) -> int:
        return sum(1 for s in self._servers() if CANOPY_ID_META in (s.get("metadata") or {}))

    def clear(self) -> None:
        servers = self._servers()
        with self.nova.http() as http:
            for s in servers:
                http.delete(f"/servers/{s['id']}")
        deadline = time.monotonic() + 600
        while self._any({}):
            if time.monotonic() > deadline:
                raise RuntimeError(f"Nova still holds {len(self._servers())} servers")
            time.sleep(0.5)


Emulator = Moto | Nova
