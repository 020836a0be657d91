"""The clouds the behaviour suite runs on, each seen two ways: through canopy (a cloud named
`c1` in a whole control plane, tests/controllers/harness.py) and behind canopy's back (the
operator's own view: make, delete and list servers directly on the cloud).

A backend also says how to make its cloud run out of room: the sim by its `full_zones`,
moto by an InsufficientInstanceCapacity injected on canopy's own client (moto never says
it by itself), the real Nova by a flavor too big for its hypervisor, which its scheduler
answers with "No valid host was found"."""

from __future__ import annotations

import asyncio
import time
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from canopy.domain.clock import SystemClock
from canopy.providers.base import CANOPY_ID_TAG, INSTALLATION_META, INSTALLATION_TAG
from canopy.providers.ec2.driver import Ec2Compute
from canopy.providers.openstack.driver import OpenStackCompute
from canopy.providers.openstack.states import to_remote
from canopy.providers.sim.driver import SimCompute
from tests.controllers.harness import Plane
from tests.interop.nova.harness import RealNova
from tests.providers.ec2.conftest import REGION, aws_client_tokens, client, inject

CLOUD = "c1"

# A second cloud, tier 1, where a server goes when c1 has no room anywhere.
SPARE = """
[[clouds]]
name = "spare"
tier = 1
[clouds.sim]
hosts = 4
host_vcpus = 8
host_disk_gb = 8000
boot_seconds = 1
price_per_vcpu_hour = 0.05
"""

COMMON = """
[scheduler]
blocklist_seconds = 600
max_attempts = 3
"""


@dataclass
class Remote:
    remote_id: str
    canopy_id: str | None
    state: str  # the cloud's own word: ACTIVE, running, stopped, SHUTOFF...


@dataclass
class Backend(ABC):
    """One kind of cloud under test; subclasses fill in the operator's view."""

    name: str
    zones: list[str]
    # Real clouds run on their own clock: each step of the plane waits this long for them.
    pause: float = 0.0
    # The canopy flavor a server asks for when it must find no room on c1 (None: any).
    huge_flavor: str | None = None
    plane: Plane | None = field(default=None, repr=False)

    @abstractmethod
    def toml(self) -> str:
        """The `[[clouds]]` table (and any flavors, images) of cloud `c1`."""

    async def attach(self, plane: Plane) -> None:
        """Called once the plane is built (a backend may swap in its own driver)."""
        self.plane = plane

    @abstractmethod
    async def oob_create(
        self, canopy_id: str | None, name: str, installation: str | None = None
    ) -> str:
        """A server made behind canopy's back, tagged with `canopy_id` (None: untagged) and
        with the installation tag `installation` (None: none)."""

    @abstractmethod
    async def oob_delete(self, remote_id: str) -> None:
        """Delete a server behind canopy's back."""

    @abstractmethod
    async def live(self) -> list[Remote]:
        """Every server on the cloud that is not deleted, tagged or not."""

    @abstractmethod
    def fill(self, zones: list[str] | None) -> None:
        """From now on, creates in `zones` (None: every zone) fail for lack of room."""

    async def settle(self) -> None:
        if self.pause:
            await asyncio.sleep(self.pause)

    async def placed(self, remote_ids: list[str]) -> None:
        """Wait until the cloud has put servers `remote_ids` somewhere (a cloud that
        places as it creates has nothing to wait for)."""
        del remote_ids


class SimBackend(Backend):
    def __init__(self, atomic: bool) -> None:
        super().__init__("sim-atomic" if atomic else "sim", zones=["z1", "z2"])
        self.atomic = atomic

    def toml(self) -> str:
        return f"""
[[clouds]]
name = "{CLOUD}"
tier = 0
[clouds.sim]
hosts = 4
host_vcpus = 8
boot_seconds = 2
zones = ["z1", "z2"]
atomic_create = {str(self.atomic).lower()}
"""

    @property
    def sim(self) -> SimCompute:
        assert self.plane is not None
        return self.plane.sim(CLOUD)

    async def oob_create(
        self, canopy_id: str | None, name: str, installation: str | None = None
    ) -> str:
        made = await self.sim.create_out_of_band(
            canopy_id, name, zone="z1", installation=installation
        )
        return made.remote_id

    async def oob_delete(self, remote_id: str) -> None:
        assert await self.sim.delete_out_of_band(remote_id)

    async def live(self) -> list[Remote]:
        return [
            Remote(r.remote_id, r.canopy_id, r.state.value) for r in await self.sim.all_servers()
        ]

    def fill(self, zones: list[str] | None) -> None:
        self.sim.settings.full_zones = list(zones if zones is not None else self.zones)


class Ec2Backend(Backend):
    """moto's server; canopy's driver gets a client the test can make refuse creates."""

    def __init__(self, moto: str, ami: str) -> None:
        super().__init__("ec2", zones=["us-east-1a", "us-east-1b"], pause=0.02)
        self.moto, self.ami = moto, ami
        self.own = client(moto)  # canopy's client, with the test's hooks on it
        self.view = client(moto)  # the operator's

    def toml(self) -> str:
        return f"""
[[clouds]]
name = "{CLOUD}"
driver = "ec2"
tier = 0
[clouds.ec2]
region = "{REGION}"
endpoint_url = "{self.moto}"
zones = ["us-east-1a", "us-east-1b"]
instance_types = ["t3.*"]

[[images]]
name = "cirros"
[images.map]
{CLOUD} = "{self.ami}"
"""

    async def attach(self, plane: Plane) -> None:
        await super().attach(plane)
        old = plane.rt.drivers[CLOUD]
        assert isinstance(old, Ec2Compute)
        await old.close()
        plane.rt.drivers[CLOUD] = Ec2Compute(CLOUD, old.options, concurrency=4, client=self.own)
        # AWS answers a used ClientToken with the instance it made; moto makes another.
        aws_client_tokens(self.own)

    async def oob_create(
        self, canopy_id: str | None, name: str, installation: str | None = None
    ) -> str:
        tags = [{"Key": "Name", "Value": name}]
        if canopy_id is not None:
            tags.append({"Key": CANOPY_ID_TAG, "Value": canopy_id})
        if installation is not None:
            tags.append({"Key": INSTALLATION_TAG, "Value": installation})
        r = self.view.run_instances(
            ImageId=self.ami,
            InstanceType="t3.nano",
            MinCount=1,
            MaxCount=1,
            Placement={"AvailabilityZone": "us-east-1a"},
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
        )
        return str(r["Instances"][0]["InstanceId"])

    async def oob_delete(self, remote_id: str) -> None:
        self.view.terminate_instances(InstanceIds=[remote_id])

    async def live(self) -> list[Remote]:
        return [r for r in await self.every() if r.state not in ("terminated", "shutting-down")]

    async def every(self) -> list[Remote]:
        """Every instance moto has made since its reset, terminated ones included (moto
        keeps listing them): a server made twice shows twice, even once one is gone."""
        out = []
        for r in self.view.describe_instances()["Reservations"]:
            for i in r["Instances"]:
                tags = {t["Key"]: t["Value"] for t in i.get("Tags", [])}
                out.append(Remote(i["InstanceId"], tags.get(CANOPY_ID_TAG), i["State"]["Name"]))
        return out

    def fill(self, zones: list[str] | None) -> None:
        full = set(zones if zones is not None else self.zones)
        inject(
            self.own,
            "RunInstances",
            "InsufficientInstanceCapacity",
            when=lambda body: body.get("Placement.AvailabilityZone") in full,
            status=500,
        )


class NovaBackend(Backend):
    """A genuine Nova (its functional harness, no Keystone). It runs on real time, so
    canopy's driver for it gets the real clock for its scheduling waits."""

    def __init__(self, nova: RealNova, tmp_path: Path, zones: list[str] | None = None) -> None:
        """`zones`: the Nova's availability zones, when it has several (make_zones)."""
        name = "openstack" if zones is None else "openstack-zones"
        super().__init__(name, zones=zones or ["nova"], pause=0.1, huge_flavor="m1.huge")
        self.nova = nova
        self.yaml = tmp_path / "clouds.yaml"
        self.yaml.write_text(
            "clouds:\n"
            "  nova:\n"
            "    auth_type: none\n"
            f"    compute_endpoint_override: {nova.url}\n"
            "    region_name: RegionOne\n"
        )
        self.marker = uuid.uuid4().hex[:8]  # this test's servers, on a Nova shared by all
        self.huge = f"huge-{self.marker}"
        self.since = datetime.now(UTC) - timedelta(seconds=1)

    def _http(self) -> httpx.Client:
        return self.nova.http()

    def toml(self) -> str:
        # The harness's hypervisor has about 1 TB of disk: 4 TB has no host anywhere.
        with self._http() as http:
            r = http.post(
                "/flavors",
                json={"flavor": {"name": self.huge, "vcpus": 1, "ram": 512, "disk": 4000}},
            )
            assert r.status_code == 200, r.text
        return f"""
[[clouds]]
name = "{CLOUD}"
driver = "openstack"
tier = 0
[clouds.openstack]
cloud = "nova"
clouds_yaml = "{self.yaml}"
schedule_poll_seconds = 0.1
[clouds.openstack.flavor_map]
"m1.huge" = "{self.huge}"
{self._small()}

[[flavors]]
name = "m1.small"
vcpus = 1
ram_mb = 2048
disk_gb = 20

[[flavors]]
name = "m1.huge"
vcpus = 1
ram_mb = 512
disk_gb = 4000

[[images]]
name = "cirros"
[images.map]
{CLOUD} = "{self.nova.image}"
"""

    def _small(self) -> str:
        # With zones, each zone is one of the harness's small hosts: m1.small boots as
        # Nova's m1.tiny, so a zone holds 8 of canopy's servers (not 5) while filled.
        return "" if len(self.zones) < 2 else '"m1.small" = "m1.tiny"'

    async def attach(self, plane: Plane) -> None:
        await super().attach(plane)
        old = plane.rt.drivers[CLOUD]
        assert isinstance(old, OpenStackCompute)
        await old.close()
        plane.rt.drivers[CLOUD] = OpenStackCompute(CLOUD, old.options, SystemClock())

    async def oob_create(
        self, canopy_id: str | None, name: str, installation: str | None = None
    ) -> str:
        meta = {"canopy_id": canopy_id} if canopy_id is not None else {}
        if installation is not None:
            meta[INSTALLATION_META] = installation
        with self._http() as http:
            return self._boot(http, name, meta)

    def _boot(
        self, http: httpx.Client, name: str, meta: dict[str, str], zone: str | None = None
    ) -> str:
        """An m1.tiny server made directly in Nova (in `zone`, if given); its id."""
        body: dict[str, Any] = {
            "name": f"{name}-{self.marker}",
            "imageRef": self.nova.image,
            "flavorRef": "1",
            "networks": "none",
        }
        if meta:
            body["metadata"] = meta
        if zone is not None:
            body["availability_zone"] = zone
        r = http.post(
            "/servers",
            json={"server": body},
            headers={"OpenStack-API-Version": "compute 2.37"},
        )
        assert r.status_code == 202, r.text
        return str(r.json()["server"]["id"])

    async def oob_delete(self, remote_id: str) -> None:
        with self._http() as http:
            r = http.delete(f"/servers/{remote_id}")
            assert r.status_code in (204, 404), r.text

    async def placed(self, remote_ids: list[str]) -> None:
        """Until Nova's scheduler has put each server in a cell (ACTIVE or ERROR): before,
        a server is a build request, listed ahead of the cells' servers, and a marker
        found among them restarts the cells' listing from its top."""
        deadline = time.monotonic() + 60
        with self._http() as http:
            for rid in remote_ids:
                while (status := http.get(f"/servers/{rid}").json()["server"]["status"]) not in (
                    "ACTIVE",
                    "ERROR",
                ):
                    assert time.monotonic() < deadline, f"{rid} still {status} after 60 s"
                    await asyncio.sleep(0.1)

    async def live(self) -> list[Remote]:
        with self._http() as http:
            r = http.get("/servers/detail")
            assert r.status_code == 200, r.text
        out = []
        # Other tests share this Nova: ours are this plane's rows and this test's marker.
        assert self.plane is not None
        rows = {s.id for s in await self.plane.servers()}
        for s in r.json()["servers"]:
            canopy_id = (s.get("metadata") or {}).get("canopy_id")
            if (self.marker in s["name"] or canopy_id in rows) and s["status"] != "DELETED":
                out.append(Remote(s["id"], canopy_id, s["status"]))
        return out

    async def every(self) -> list[Remote]:
        """Every server this Nova has made since this backend was made, deleted ones
        included (`changes-since`; a deleted server's canopy id is read from its name,
        as canopy's driver does): a server made twice shows twice, even once one is gone."""
        with self._http() as http:
            r = http.get(
                "/servers/detail", params={"changes-since": self.since.isoformat(), "limit": 1000}
            )
            assert r.status_code == 200, r.text
        return [Remote(s["id"], to_remote(s).canopy_id, s["status"]) for s in r.json()["servers"]]

    def fill(self, zones: list[str] | None) -> None:
        """Fill each zone's hosts with the operator's own (untagged) servers, a few at a
        time, until Nova's scheduler answers "No valid host was found" there. With one
        zone, the behaviour tests run out of room by flavor instead (huge_flavor)."""
        if len(self.zones) < 2:
            raise AssertionError("a one-zone Nova runs out of room by flavor: use huge_flavor")
        with self._http() as http:
            for zone in zones if zones is not None else self.zones:
                for batch in range(10):
                    made = [
                        self._boot(http, f"fill-{zone}-{batch}-{i}", {}, zone) for i in range(4)
                    ]
                    refused = {s: f for s, f in self._built(http, made).items() if f is not None}
                    for sid, fault in refused.items():
                        assert "No valid host" in fault, fault
                        http.delete(f"/servers/{sid}")
                    if refused:
                        break
                else:
                    raise AssertionError(f"zone {zone} never filled up")

    def _built(self, http: httpx.Client, ids: list[str]) -> dict[str, str | None]:
        """Wait until Nova has built or refused each server: id -> its fault (None: built)."""
        out: dict[str, str | None] = {}
        deadline = time.monotonic() + 120
        while len(out) < len(ids):
            assert time.monotonic() < deadline, f"servers still building: {ids}"
            for sid in ids:
                if sid not in out:
                    server = http.get(f"/servers/{sid}").json()["server"]
                    if server["status"] in ("ACTIVE", "ERROR"):
                        fault = (server.get("fault") or {}).get("message", "no fault")
                        out[sid] = None if server["status"] == "ACTIVE" else str(fault)
            time.sleep(0.2)
        return out
