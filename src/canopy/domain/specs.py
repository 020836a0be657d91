"""Value types passed between the store, the scheduler and the drivers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from canopy.domain.states import RemoteState


@dataclass(frozen=True, slots=True)
class Resources:
    """A size: what a flavor asks for and what a claim holds."""

    vcpus: int
    ram_mb: int
    disk_gb: int = 0
    instances: int = 1


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """Everything a driver needs to create one server. `canopy_id` makes create idempotent."""

    canopy_id: str
    name: str
    flavor_name: str
    resources: Resources
    remote_flavor: str | None
    remote_image: str
    key_name: str | None = None
    public_key: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    user_data: str | None = None
    # The zone inside the cloud that placement chose (an EC2 AZ, a child Nova's AZ); None
    # lets the driver choose. A cloud is one availability zone to canopy's users either way.
    zone: str | None = None
    # The physical host to run on (a host reservation's, on a cloud with the `hosts`
    # ability), and the hosts an unpinned server must stay off (those registered for
    # reservation: out of the ordinary pool). A driver without hosts gets neither.
    host: str | None = None
    exclude_hosts: tuple[str, ...] = ()
    # This installation's id, tagged on the server beside its canopy id (None: untagged).
    installation: str | None = None
    # No create was ever asked for this canopy id before: the record says so, and it is
    # committed before this call is made. No server can carry the id yet, so the driver
    # may skip its look-up (one API call of two). Any retry, after a lost answer or a
    # crash, is not a first attempt and looks first.
    first_attempt: bool = False
    # The flavor's extra specs (Nova's `hw:cpu_policy` ...). Only a driver that makes the
    # flavor it boots with passes them on (the openstack driver with `manage_flavors`);
    # the others boot a flavor or instance type of the cloud's, whose own specs apply.
    extra_specs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RemoteServer:
    """A server as a cloud reports it, translated into the shared vocabulary."""

    remote_id: str
    canopy_id: str | None
    name: str
    state: RemoteState
    addresses: dict[str, list[str]] = field(default_factory=dict)
    flavor: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    fault: str | None = None
    zone: str | None = None
    # The physical host it runs on, when the cloud says (drivers with the `hosts` ability).
    host: str | None = None
    # The installation tag the server carries (None: none, e.g. made before canopy tagged
    # it, or a deleted OpenStack server whose metadata is gone).
    installation: str | None = None


@dataclass(frozen=True, slots=True)
class Capacity:
    """What a cloud can still take. `None` means the cloud does not say."""

    vcpus_total: int | None
    ram_mb_total: int | None
    instances_total: int | None
    vcpus_free: int | None = None
    ram_mb_free: int | None = None
    instances_free: int | None = None


@dataclass(frozen=True, slots=True)
class Offering:
    """A remote flavor / instance type and what it costs per hour."""

    name: str
    vcpus: int
    ram_mb: int
    disk_gb: int
    price_per_hour: float
