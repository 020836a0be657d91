"""The provider contract every driver implements, and the shared vocabulary it speaks.

Drivers translate native states through one table each and raise only domain errors
(CapacityError, CloudQuotaError, TransientError, InvalidRequest, Unsupported).
Optional abilities are data: a driver lists what it cannot do and why, and canopy checks
that before it accepts a request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from canopy.domain.specs import Capacity, Offering, RemoteServer, ServerSpec
from canopy.domain.states import Ability, PowerAction

# The tag (EC2) / metadata key (OpenStack) that carries canopy's id on every remote server.
CANOPY_ID_TAG = "canopy:id"
CANOPY_ID_META = "canopy_id"
# ... and the installation that made it (installations sharing an account tell their
# servers apart by it: sync adopts and collects only its own installation's).
INSTALLATION_TAG = "canopy:installation"
INSTALLATION_META = "canopy_installation"


def remote_name(name: str, canopy_id: str) -> str:
    """The recognisable remote name: the user's name plus the canopy id's first block."""
    return f"{name}-canopy-{canopy_id.split('-')[0]}"[:255]


@dataclass(frozen=True, slots=True)
class Abilities:
    """What a driver cannot do, with the reason shown to the user when they ask for it."""

    missing: Mapping[Ability, str] = field(default_factory=dict)

    def has(self, ability: Ability) -> bool:
        return ability not in self.missing

    def why_not(self, ability: Ability) -> str | None:
        return self.missing.get(ability)


@dataclass(frozen=True, slots=True)
class ListPage:
    """One page of a listing: its servers, and the marker of the next page (None: last)."""

    servers: list[RemoteServer]
    next: str | None = None


@runtime_checkable
class Compute(Protocol):
    """One cloud's compute service, as canopy needs it."""

    name: str
    abilities: Abilities

    async def capacity(self) -> Capacity:
        """Free vcpus/ram/instances or quota headroom; None fields mean unknown."""
        ...

    async def zones(self) -> list[str]:
        """The zones inside this cloud a server can be placed in (EC2 AZs, a Nova's AZs);
        empty when the cloud has none to choose between."""
        ...

    async def offerings(self) -> list[Offering]:
        """Remote flavors / instance types with their size and price per hour."""
        ...

    async def create(self, spec: ServerSpec) -> RemoteServer:
        """Create a server, or return the one already tagged with `spec.canopy_id`."""
        ...

    async def find(self, canopy_id: str) -> RemoteServer | None:
        """The live server tagged with `canopy_id`, if any."""
        ...

    async def get(self, remote_id: str) -> RemoteServer | None:
        """One server by remote id; None if it does not exist (or is gone)."""
        ...

    async def list(self, changes_since: datetime | None = None) -> list[RemoteServer]:
        """Canopy-tagged servers; with `changes_since`, those changed since (deleted too)."""
        ...

    async def list_page(
        self, changes_since: datetime | None, marker: str | None, limit: int
    ) -> ListPage:
        """One page of `list(changes_since)`, in one call to the cloud: at most `limit`
        servers from `marker` on (None: the first page), and the next page's marker.

        A page may hold fewer servers than `limit` (none, even) and still have a next one.
        The pages follow one order that a server keeps while it exists (Nova's creation
        order, the sim's sequence, EC2's tag pages): a server there throughout a listing is
        on one page of it, or on two when a driver lost its place and started over (Nova,
        when its marker's server was archived); one created or deleted during it may be on
        none.
        """
        ...

    async def delete(self, remote_id: str) -> None:
        """Delete a server; a missing one is success."""
        ...

    async def power(self, remote_id: str, action: PowerAction) -> None:
        """Start, stop or reboot a server."""
        ...

    async def close(self) -> None:
        """Release connections and files."""
        ...


@dataclass(frozen=True, slots=True)
class HostInfo:
    """One physical host of a cloud, as a driver with the `hosts` ability reports it."""

    name: str
    vcpus: int
    memory_mb: int
    local_gb: int
    zone: str = ""


@runtime_checkable
class HostLister(Protocol):
    """A cloud that shows its physical hosts (the sim does): what Blazar's os-hosts
    registers and host reservations hold. A driver without it lacks `Ability.HOSTS`."""

    async def hosts(self) -> list[HostInfo]:
        """Every host, in a stable order."""
        ...


@runtime_checkable
class SizedByRequest(Protocol):
    """A cloud without fixed instance types: it runs any flavor's size under the flavor's
    own name, at a price of its own (inventory maps every flavor to it, no offerings)."""

    def price_per_hour(self, vcpus: int, ram_mb: int) -> float:
        """What one server of this size costs per hour there."""
        ...


def sized_by_request(driver: Compute) -> SizedByRequest | None:
    """`driver` if it runs any flavor's size under the flavor's own name now (a driver may
    say, with a false `takes_any_size` attribute, that it does not, or no longer does)."""
    if isinstance(driver, SizedByRequest) and getattr(driver, "takes_any_size", True):
        return driver
    return None


def boots_any_image(driver: Compute) -> bool:
    """Whether `driver`'s cloud boots a canopy image id with no image mapping (a driver
    says so with a true `boots_any_image` attribute; real clouds need their own ids)."""
    return bool(getattr(driver, "boots_any_image", False))


async def every_page(
    driver: Compute, changes_since: datetime | None, limit: int
) -> list[RemoteServer]:
    """Every page of a listing, in one list: what a driver's `list` is made of."""
    out: list[RemoteServer] = []
    marker: str | None = None
    while True:
        page = await driver.list_page(changes_since, marker, limit)
        out += page.servers
        if page.next is None:
            return out
        marker = page.next
