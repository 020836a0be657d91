"""The sections of Canopy's settings tree: one model per table of the TOML file.

`Settings` (config.py) assembles them; each checks its own fields, and `CloudSettings` also
that its driver has its section. The embedded default clouds, flavors and images are here.
"""

from __future__ import annotations

import ipaddress
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from canopy.domain.money import to_micros
from canopy.providers.ec2.options import Ec2Options
from canopy.providers.options import DRIVER_OPTIONS, OPTIONAL_TABLE, OpenStackCloudSettings
from canopy.providers.sim.options import SimSettings


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatabaseSettings(_Strict):
    url: str = "sqlite+aiosqlite:///{data_dir}/canopy.db"
    echo: bool = False
    pool_size: int = Field(default=10, ge=1)


class ApiSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8774, ge=0, le=65535)
    public_url: str | None = None  # what clients are told to use; defaults to http://host:port
    # Request bodies larger than this are refused (413) before they are read or parsed;
    # identity's requests are small, and its token request needs no token to send.
    max_body_bytes: int = Field(default=1 << 20, ge=1024)
    max_identity_body_bytes: int = Field(default=64 << 10, ge=1024)
    # On PostgreSQL, how long a query carrying a user's regular expression (?name=, ?ip=)
    # may run before it is stopped with a 400.
    regex_timeout_seconds: float = Field(default=5.0, gt=0.0, le=300.0)
    # The proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (addresses or
    # CIDRs). Empty: the headers are ignored and a client's address is the connection's
    # peer, which the login throttle counts by, so no client can choose its own.
    forwarded_allow_ips: list[str] = Field(default_factory=list)

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _addresses_or_networks(cls, value: list[str]) -> list[str]:
        out = []
        for item in value:
            try:
                out.append(str(ipaddress.ip_network(item.strip(), strict=False)))
            except ValueError:
                raise ValueError(
                    f"{item!r} is not an IP address or CIDR network "
                    '(e.g. "10.0.0.5" or "10.0.0.0/24")'
                ) from None
        return out


class SchedulerSettings(_Strict):
    burst_threshold: float = Field(default=0.8, gt=0.0, le=1.0)
    max_attempts: int = Field(default=3, ge=1)
    blocklist_seconds: float = Field(default=300.0, ge=0.0)
    # A decimal amount in the config (a TOML float is read through its decimal text, so
    # 0.1 is one tenth); at most 6 decimal places. The scheduler compares micro-units.
    max_spend_per_hour: Decimal = Field(default=Decimal("50.0"), ge=0, decimal_places=6)
    # How long a server may wait in BUILD/scheduling for capacity or spend headroom.
    schedule_timeout_seconds: float = Field(default=600.0, ge=0.0)
    retry_seconds: float = Field(default=5.0, gt=0.0)
    cost_weight: float = -1.0
    utilisation_weight: float = -0.5
    tier_weight: float = -2.0

    @property
    def max_spend_per_hour_micros(self) -> int:
        """The spend cap in micro-units (domain.money), exact."""
        return to_micros(self.max_spend_per_hour, exact=True)


class ControllerSettings(_Strict):
    # How long a worker's lease on a row lasts without renewal: after a crash, its rows are
    # taken over this long after its last renewal. Renewed by the heartbeat and before
    # every cloud call, so it need not outlast a call.
    lease_seconds: float = Field(default=10.0, gt=0.0)
    # How often in-flight leases are renewed; default a third of lease_seconds.
    heartbeat_seconds: float | None = Field(default=None, gt=0.0)
    poll_seconds: float = Field(default=0.5, gt=0.0)
    sync_seconds: float = Field(default=2.0, gt=0.0)
    # While a cloud has servers building (or being created), sync polls it this often, so
    # a finished boot shows ACTIVE soon after; `sync_seconds` is the interval at rest.
    sync_converging_seconds: float = Field(default=0.5, gt=0.0)
    # On a cloud that lists changes since a time (deletions included), sync lists
    # everything (a healing pass) when this long has passed since the last one; a cloud
    # without changes-since is listed fully every pass (controllers/sync_full.py).
    full_sync_seconds: float = Field(default=300.0, gt=0.0)
    # If set, also a healing pass every this many passes (the old rhythm; tests, bench).
    full_sync_every: int | None = Field(default=None, ge=1)
    # Every this many healing passes, sync compares every listed server and every row of
    # the cloud, and rebuilds its digest of unchanged servers (controllers/sync_digest.py);
    # the full passes between compare only what changed.
    sync_deep_every: int = Field(default=12, ge=1)
    # Servers asked of a cloud per page of sync's listing: a pass holds one page of
    # listed servers at a time, not the whole listing (controllers/sync_pages.py).
    sync_page_size: int = Field(default=1000, ge=1, le=10000)
    call_timeout_seconds: float = Field(default=30.0, gt=0.0)
    backoff_base_seconds: float = Field(default=1.0, gt=0.0)
    backoff_max_seconds: float = Field(default=60.0, gt=0.0)
    batch_size: int = Field(default=64, ge=1)
    max_transient_retries: int = Field(default=5, ge=0)
    sync_overlap_seconds: float = Field(default=2.0, ge=0.0)
    unhealthy_after_failures: int = Field(default=3, ge=1)
    # How often each cloud's capacity and flavor mappings are read again (inventory).
    inventory_seconds: float = Field(default=300.0, gt=0.0)

    @property
    def heartbeat(self) -> float:
        """Seconds between lease renewals of the rows a worker is working on."""
        if self.heartbeat_seconds is not None:
            return self.heartbeat_seconds
        return self.lease_seconds / 3

    @model_validator(mode="after")
    def _heartbeat_fits_in_the_lease(self) -> ControllerSettings:
        if self.heartbeat > self.lease_seconds / 3:
            raise ValueError(
                f"heartbeat_seconds ({self.heartbeat:g}) must be at most a third of "
                f"lease_seconds ({self.lease_seconds:g}): a renewal may fail once and the "
                "next must still come well before the lease runs out"
            )
        return self


class ReservationSettings(_Strict):
    """Leases (`[reservations]`): how far ahead of a lease's start its servers boot."""

    # The servers a lease carries boot this long before its start: the cloud's observed
    # boot time (the p95 of its recent servers' create -> ACTIVE times) plus this margin.
    boot_margin_seconds: float = Field(default=30.0, ge=0.0)
    # The boot time assumed for a cloud with no boots to go by yet.
    default_boot_seconds: float = Field(default=120.0, gt=0.0)
    # How many of a cloud's most recent boots (of the last week) the p95 is taken over.
    boot_history: int = Field(default=100, ge=1, le=10000)
    # The longest lead (p95 plus margin) a lease is given, whatever a cloud took.
    max_boot_lead_seconds: float = Field(default=3600.0, gt=0.0)


class OrchestrationSettings(_Strict):
    """Stacks (`[orchestration]`)."""

    # `openstack stack adopt`: Heat ships it off (a preview feature that trusts the ids in
    # the data); canopy checks every id against the caller's project, so it is on.
    enable_stack_adopt: bool = True
    # The limit of an action of a stack created without `timeout_mins` (Heat's
    # `stack_action_timeout`, 3600 s): past it the action fails as "Timed out".
    stack_action_timeout_minutes: int = Field(default=60, ge=1, le=60 * 24 * 7)


class WorkerSettings(_Strict):
    """`canopy worker`'s own HTTP listener, which serves /metrics (`canopy up` and
    `canopy api` serve it on the API's port)."""

    metrics: bool = True
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9774, ge=0, le=65535)  # 0: any free port, shown at start


class IdentitySettings(_Strict):
    token_ttl_seconds: float = Field(default=43200.0, gt=0.0)  # 12 hours
    region: str = "RegionOne"
    # Keystone's admin_project_name: the admin role makes a cloud-wide admin only here.
    admin_project_name: str = Field(default="admin", min_length=1, max_length=64)
    # Login throttle (see services/throttle.py); 0 attempts turns that limit off.
    # Failures of one user from one source address:
    lockout_failure_attempts: int = Field(default=5, ge=0)
    # ... of one source address, whoever it tries:
    address_failure_attempts: int = Field(default=50, ge=0)
    # ... of one user from every address: off by default, as it lets anyone who knows a
    # user name (admin always exists) keep that user locked out.
    user_failure_attempts: int = Field(default=0, ge=0)
    lockout_seconds: float = Field(default=30.0, gt=0.0)
    lockout_max_seconds: float = Field(default=900.0, gt=0.0)
    lockout_window_seconds: float = Field(default=900.0, gt=0.0)
    # Argon2 checks at once per API process, and how many more may wait (then 503).
    password_threads: int = Field(default=2, ge=1, le=64)
    password_queue: int = Field(default=16, ge=0, le=10000)
    # How often a worker purges expired tokens and stale login failures.
    purge_interval_seconds: float = Field(default=300.0, gt=0.0)


class QuotaDefaults(_Strict):
    """Per-project limits used when a project has no quota row of its own (-1 = unlimited)."""

    instances: int = Field(default=10, ge=-1)
    cores: int = Field(default=20, ge=-1)
    ram: int = Field(default=51200, ge=-1)
    key_pairs: int = Field(default=100, ge=-1)
    metadata_items: int = Field(default=128, ge=-1)
    server_groups: int = Field(default=10, ge=-1)
    server_group_members: int = Field(default=10, ge=-1)


CloudDriver = Literal["sim", "ec2", "openstack"]


class CloudSettings(_Strict):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")]
    driver: CloudDriver = "sim"
    tier: int = Field(default=0, ge=0, le=1000)
    enabled: bool = True
    concurrency: int = Field(default=50, ge=1)
    flavor_map: dict[str, str] = Field(default_factory=dict)
    # One table per driver, named like it; its model is the driver's own, registered in
    # providers/options.py (DRIVER_OPTIONS).
    sim: SimSettings | None = None
    ec2: Ec2Options | None = None
    openstack: OpenStackCloudSettings | None = None

    @model_validator(mode="after")
    def _driver_section(self) -> CloudSettings:
        table = self.driver
        if getattr(self, table) is None:
            if table not in OPTIONAL_TABLE:
                raise ValueError(
                    f"cloud {self.name!r} uses driver {table!r} but has no [clouds.{table}]"
                )
            setattr(self, table, DRIVER_OPTIONS[table]())
        return self

    def merged_flavor_map(self) -> dict[str, str]:
        """The cloud-wide `flavor_map` and its driver table's own, the driver's winning:
        what both the inventory and the driver go by."""
        own: dict[str, str] = getattr(getattr(self, self.driver), "flavor_map", None) or {}
        return {**self.flavor_map, **own}


class FlavorSettings(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=255)]
    vcpus: int = Field(ge=1)
    ram_mb: int = Field(ge=1)
    disk_gb: int = Field(default=0, ge=0)
    # Nova's flavor ids are 1 to 255 characters (store/models/clouds.py FLAVOR_ID_LENGTH).
    id: Annotated[str, Field(min_length=1, max_length=255)] | None = None


class ImageSettings(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=255)]
    id: str | None = None
    map: dict[str, str] = Field(default_factory=dict)


def default_clouds() -> list[CloudSettings]:
    """The embedded default: a small free private cloud and a large priced public one."""
    return [
        CloudSettings(
            name="private",
            driver="sim",
            tier=0,
            sim=SimSettings(hosts=2, host_vcpus=8, host_ram_mb=32768, price_per_vcpu_hour=0.0),
        ),
        CloudSettings(
            name="public",
            driver="sim",
            tier=1,
            sim=SimSettings(
                hosts=1000,
                host_vcpus=64,
                host_ram_mb=262144,
                price_per_vcpu_hour=0.048,
                api_latency_ms=40.0,
            ),
        ),
    ]


def default_flavors() -> list[FlavorSettings]:
    return [
        FlavorSettings(id="1", name="m1.tiny", vcpus=1, ram_mb=512, disk_gb=1),
        FlavorSettings(id="2", name="m1.small", vcpus=1, ram_mb=2048, disk_gb=20),
        FlavorSettings(id="3", name="m1.medium", vcpus=2, ram_mb=4096, disk_gb=40),
        FlavorSettings(id="4", name="m1.large", vcpus=4, ram_mb=8192, disk_gb=80),
        FlavorSettings(id="5", name="m1.xlarge", vcpus=8, ram_mb=16384, disk_gb=160),
    ]


def default_images() -> list[ImageSettings]:
    return [
        ImageSettings(id="6e6d3a0e-4c4b-4f3e-9a57-0c1b5b1e2a01", name="cirros"),
        ImageSettings(id="3b1c2f4e-8d6a-4c7e-b0a2-5f9d8e7c6b02", name="ubuntu-24.04"),
    ]
