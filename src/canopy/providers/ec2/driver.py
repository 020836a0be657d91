"""The `ec2` driver: one AWS region (or an EC2 emulator) as one canopy cloud.

boto3 is synchronous: every call runs in this cloud's own thread pool, sized to its
`concurrency`, so the event loop never blocks and the runtime's per-cloud limit is also
the number of threads and HTTP connections. botocore's own retries are off: a throttled or
failed call becomes a TransientError and the runtime backs off (one place for backoff).

Idempotent create: RunInstances carries a ClientToken derived from the canopy id and
tags the instance `canopy:id` / `Name` in the same call (TagSpecifications), so a retried
create can never make a second instance, even if the first answer was lost. A token that
already names a terminated instance (a boot that failed, then a retry on this cloud) or
was used with other parameters (another AZ) moves on to the next token of that canopy id.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar

from canopy.domain.errors import CloudAuthError, CloudError
from canopy.domain.specs import Capacity, Offering, RemoteServer, ServerSpec
from canopy.domain.states import Ability, PowerAction, RemoteState
from canopy.providers.base import (
    CANOPY_ID_TAG,
    INSTALLATION_TAG,
    Abilities,
    ListPage,
    every_page,
    remote_name,
)
from canopy.providers.ec2.listing import Descriptions, list_pass
from canopy.providers.ec2.options import STORED, Ec2Options
from canopy.providers.ec2.prices import PriceTable, shipped
from canopy.providers.ec2.translate import error_code, parse_time, to_remote, translate

T = TypeVar("T")
_LIVE = ["pending", "running", "stopping", "stopped"]
_TOKENS = 4  # client tokens tried per canopy id (see the module docstring)
_OFFERINGS_TTL = 3600.0  # instance types change rarely: DescribeInstanceTypes once an hour


def client_token(canopy_id: str, n: int = 0) -> str:
    """The RunInstances ClientToken of a canopy id's `n`th create (at most 64 characters)."""
    return (canopy_id if n == 0 else f"{canopy_id}.{n}")[:64]


class Ec2Compute:
    """The compute service of one EC2 region (implements providers.base.Compute)."""

    def __init__(
        self,
        name: str,
        options: Ec2Options,
        *,
        concurrency: int = 50,
        prices: PriceTable | None = None,
        client: Any = None,
        credentials: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.options = options
        # Stored credentials (options.credentials == "stored"), opened from the vault by
        # the worker; kept only in this object, never logged (repr shows none).
        self._keys = dict(credentials) if credentials else None
        self.abilities = Abilities(
            missing={
                Ability.HOSTS: "EC2 does not expose the physical hosts behind its instances",
                Ability.EXACT_FLAVORS: "EC2's instance types are fixed: a flavor runs as its "
                "mapped type, or the cheapest that fits",
                Ability.CHANGES_SINCE: "EC2 has no changes-since: every pass lists every "
                "canopy instance",
            }
        )
        self.prices = prices or shipped()
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, concurrency), thread_name_prefix=f"ec2-{name}"
        )
        self._concurrency = concurrency
        self._client = client
        self._client_lock = threading.Lock()
        self._zones: list[str] | None = None
        self._offerings: tuple[float, list[Offering]] | None = None
        self._descriptions = Descriptions()  # the last description of each instance

    # Plumbing ---------------------------------------------------------------------------

    def _make_client(self) -> Any:
        import boto3
        import botocore.session
        from botocore.config import Config

        _quiet_boto()
        o = self.options
        # EC2 answers carry ISO 8601 times (several per instance): parsed by the standard
        # library instead of dateutil, a third of the CPU of parsing a description.
        core = botocore.session.Session()
        core.get_component("response_parser_factory").set_parser_defaults(
            timestamp_parser=parse_time
        )
        if o.credentials == STORED:
            keys = self._keys or {}
            if not keys.get("access_key_id") or not keys.get("secret_access_key"):
                raise CloudAuthError(
                    "no stored credentials for this cloud: set them with `canopy cloud set "
                    f"{self.name} --credentials-file FILE`",
                    cloud=self.name,
                )
            session = boto3.session.Session(
                aws_access_key_id=keys["access_key_id"],
                aws_secret_access_key=keys["secret_access_key"],
                aws_session_token=keys.get("session_token"),
                region_name=o.region,
                botocore_session=core,
            )
        else:
            session = boto3.session.Session(
                profile_name=o.profile, region_name=o.region, botocore_session=core
            )
        return session.client(
            "ec2",
            region_name=o.region,
            endpoint_url=o.endpoint_url,
            config=Config(
                retries={"max_attempts": 1, "mode": "standard"},
                max_pool_connections=max(10, self._concurrency),
                connect_timeout=10,
                read_timeout=30,
            ),
        )

    def _first_client(self) -> Any:
        """The client, made by the first call that needs it: calls that start together
        (a burst of creates on a new cloud) wait for that one instead of each making its
        own (a client costs its service model's parsing: half a second of CPU)."""
        with self._client_lock:
            if self._client is None:
                self._client = self._make_client()
            return self._client

    async def _call(self, fn: Callable[[Any], T], *, zone: str | None = None, what: str = "") -> T:
        """Run `fn(client)` in this cloud's threads; boto3 errors become domain errors."""

        def run() -> T:
            return fn(self._client or self._first_client())

        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, run)
        except Exception as e:
            raised = translate(e, cloud=self.name, zone=zone)
            if raised is e:
                raise
            if what and isinstance(raised, CloudError):
                raised.args = (f"{what}: {raised}",)
            raise raised from e

    def _describe(self, filters: list[dict[str, Any]], ids: list[str] | None = None) -> Any:
        """A DescribeInstances over every page, as a function of the client."""
        page = self.options.page_size

        def run(c: Any) -> list[dict[str, Any]]:
            args: dict[str, Any] = {"Filters": filters}
            if ids:
                args = {"InstanceIds": ids}
            else:
                args["PaginationConfig"] = {"PageSize": page}
            out: list[dict[str, Any]] = []
            for p in c.get_paginator("describe_instances").paginate(**args):
                for r in p.get("Reservations", []):
                    out.extend(r.get("Instances", []))
            return out

        return run

    # The Compute protocol ---------------------------------------------------------------

    async def zones(self) -> builtins.list[str]:
        """The configured zones, else the region's available AZs (asked once)."""
        if self.options.zones:
            return list(self.options.zones)
        if self._zones is None:
            answer = await self._call(
                lambda c: c.describe_availability_zones(
                    Filters=[{"Name": "state", "Values": ["available"]}]
                ),
                what="DescribeAvailabilityZones",
            )
            self._zones = sorted(z["ZoneName"] for z in answer.get("AvailabilityZones", []))
        return list(self._zones)

    async def capacity(self) -> Capacity:
        """The account limits the operator configured (EC2's API does not tell them); the
        headroom under them from the live canopy instances' sizes is left to canopy's
        own claims."""
        o = self.options
        await self.zones()  # proves the credentials and the endpoint
        return Capacity(vcpus_total=o.max_vcpus, ram_mb_total=None, instances_total=o.max_instances)

    async def offerings(self) -> builtins.list[Offering]:
        """Every instance type the region offers that has a price (table or config)."""
        cached = self._offerings
        if cached is not None and time.monotonic() - cached[0] < _OFFERINGS_TTL:
            return list(cached[1])

        patterns = self.options.instance_types
        args: dict[str, Any] = {"PaginationConfig": {"PageSize": 100}}
        if patterns:
            args["Filters"] = [{"Name": "instance-type", "Values": patterns}]

        def run(c: Any) -> list[dict[str, Any]]:
            out: list[dict[str, Any]] = []
            for p in c.get_paginator("describe_instance_types").paginate(**args):
                out.extend(p.get("InstanceTypes", []))
            return out

        types = await self._call(run, what="DescribeInstanceTypes")
        found: list[Offering] = []
        for t in types:
            name = str(t["InstanceType"])
            price = self.prices.price(self.options.region, name, self.options.prices)
            if price is None:
                continue
            storage = t.get("InstanceStorageInfo") or {}
            found.append(
                Offering(
                    name=name,
                    vcpus=int(t.get("VCpuInfo", {}).get("DefaultVCpus", 0)),
                    ram_mb=int(t.get("MemoryInfo", {}).get("SizeInMiB", 0)),
                    disk_gb=int(storage.get("TotalSizeInGB", 0) or 0),
                    price_per_hour=price,
                )
            )
        found.sort(key=lambda o: (o.price_per_hour, o.name))
        self._offerings = (time.monotonic(), found)
        return list(found)

    async def create(self, spec: ServerSpec) -> RemoteServer:
        """The live instance tagged `spec.canopy_id`, or a new one (RunInstances)."""
        found = None if spec.first_attempt else await self.find(spec.canopy_id)
        if found is not None:
            return found
        zone = spec.zone or (self.options.zones[0] if self.options.zones else None)
        if not spec.remote_flavor:
            raise CloudError(
                f"no instance type for flavor {spec.flavor_name!r} on {self.name}",
                cloud=self.name,
            )
        base: dict[str, Any] = {
            "ImageId": spec.remote_image,
            "InstanceType": spec.remote_flavor,
            "MinCount": 1,
            "MaxCount": 1,
            "TagSpecifications": [
                {
                    "ResourceType": "instance",
                    "Tags": [
                        {"Key": CANOPY_ID_TAG, "Value": spec.canopy_id},
                        {"Key": "Name", "Value": remote_name(spec.name, spec.canopy_id)},
                        *(
                            [{"Key": INSTALLATION_TAG, "Value": spec.installation}]
                            if spec.installation
                            else []
                        ),
                    ],
                }
            ],
        }
        if zone:
            base["Placement"] = {"AvailabilityZone": zone}
        if spec.key_name:
            base["KeyName"] = spec.key_name
        if spec.user_data:
            base["UserData"] = spec.user_data
        for n in range(_TOKENS):
            args = {**base, "ClientToken": client_token(spec.canopy_id, n)}
            try:
                answer = await self._call(
                    lambda c, a=args: c.run_instances(**a),  # type: ignore[misc]
                    zone=zone,
                    what="RunInstances",
                )
            except CloudError as e:
                if error_code(e.__cause__ or e) == "IdempotentParameterMismatch":
                    continue  # this token was spent on another request: the next one
                raise
            instance = answer["Instances"][0]
            if instance.get("State", {}).get("Name") in ("shutting-down", "terminated"):
                continue  # the token names an earlier, dead instance: the next one
            return to_remote(instance)
        raise CloudError(
            f"RunInstances: every client token of {spec.canopy_id} is spent", cloud=self.name
        )

    async def find(self, canopy_id: str) -> RemoteServer | None:
        """The live instance tagged `canopy_id` (the oldest, if there are copies)."""
        filters = [
            {"Name": f"tag:{CANOPY_ID_TAG}", "Values": [canopy_id]},
            {"Name": "instance-state-name", "Values": _LIVE},
        ]
        found = await self._call(self._describe(filters), what="DescribeInstances")
        if not found:
            return None
        return to_remote(min(found, key=lambda i: (i.get("LaunchTime"), i["InstanceId"])))

    async def get(self, remote_id: str) -> RemoteServer | None:
        """One instance by id; None if it does not exist or is terminated."""
        try:
            found = await self._call(self._describe([], [remote_id]), what="DescribeInstances")
        except CloudError as e:
            if (error_code(e.__cause__ or e) or "").startswith("InvalidInstanceID"):
                return None
            raise
        live = [to_remote(i) for i in found]
        return next((r for r in live if r.state != RemoteState.DELETED), None)

    async def list(self, changes_since: datetime | None = None) -> builtins.list[RemoteServer]:
        """Every page of `list_page`."""
        return await every_page(self, changes_since, self.options.page_size)

    async def list_page(
        self, changes_since: datetime | None, marker: str | None, limit: int
    ) -> ListPage:
        """Canopy-tagged instances, terminated ones included while EC2 still lists them:
        one page of DescribeTags (`limit` tags, 5 to 1,000) and the instances it names.
        EC2 has no changes-since: every pass lists every canopy instance, but describes
        only those whose state changed since (providers/ec2/listing.py)."""
        o = self.options
        known = self._descriptions.known
        found = await self._call(
            lambda c: list_pass(c, known, o.describe_refresh_seconds, limit, marker),
            what="DescribeTags / DescribeInstanceStatus / DescribeInstances",
        )
        return ListPage(self._descriptions.merge(found), found.next)

    async def delete(self, remote_id: str) -> None:
        """TerminateInstances; an instance that is not there is success."""
        try:
            await self._call(
                lambda c: c.terminate_instances(InstanceIds=[remote_id]),
                what="TerminateInstances",
            )
        except CloudError as e:
            if (error_code(e.__cause__ or e) or "").startswith("InvalidInstanceID"):
                return
            raise

    async def power(self, remote_id: str, action: PowerAction) -> None:
        """StopInstances, StartInstances or RebootInstances."""
        calls: Mapping[str, Callable[[Any], Any]] = {
            PowerAction.STOP: lambda c: c.stop_instances(InstanceIds=[remote_id]),
            PowerAction.START: lambda c: c.start_instances(InstanceIds=[remote_id]),
            # EC2 has one reboot: soft, forced after four minutes if the guest ignores it.
            PowerAction.REBOOT_SOFT: lambda c: c.reboot_instances(InstanceIds=[remote_id]),
            PowerAction.REBOOT_HARD: lambda c: c.reboot_instances(InstanceIds=[remote_id]),
        }
        await self._call(calls[action], what=f"{action} {remote_id}")

    async def import_keypair(self, name: str, public_key: str) -> None:
        """ImportKeyPair (ability KEYPAIRS); AlreadyExists if EC2 has that name."""
        await self._call(
            lambda c: c.import_key_pair(KeyName=name, PublicKeyMaterial=public_key.encode()),
            what="ImportKeyPair",
        )

    async def close(self) -> None:
        """Release the threads and the HTTP connections."""
        client, self._client = self._client, None
        if client is not None:
            await asyncio.get_running_loop().run_in_executor(self._pool, client.close)
        self._pool.shutdown(wait=False, cancel_futures=True)


def _quiet_boto() -> None:
    """Credentials are never logged: botocore at DEBUG writes each request's headers, the
    `Authorization` header with the access key id among them, whatever level canopy runs
    at (`--log-level DEBUG` included). Its loggers stay at INFO or above."""
    for name in ("botocore", "boto3"):
        logger = logging.getLogger(name)
        if logger.level < logging.INFO:  # NOTSET (0) or DEBUG: at INFO; WARNING stays
            logger.setLevel(logging.INFO)
