"""The `openstack` driver: a Nova v2.1 (a real OpenStack, or another canopy) as a cloud.

openstacksdk is synchronous: every call runs in a thread (`asyncio.to_thread`), at most
`concurrency` at once per cloud. Rule 2 on Nova, which has no client token: a create
first looks for a server already carrying the canopy id (metadata `canopy_id`, found by
its recognisable name), and only then creates. A create then waits, briefly, for the
child's scheduler: a "No valid host was found" fault is a capacity error at once, so
placement blocklists this cloud and moves on instead of counting a failed boot.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, TypeVar

from canopy.domain.clock import Clock
from canopy.domain.errors import CapacityError, CloudError, TransientError
from canopy.domain.specs import Capacity, Offering, RemoteServer, ServerSpec
from canopy.domain.states import Ability, PowerAction, RemoteState
from canopy.providers.base import (
    CANOPY_ID_META,
    INSTALLATION_META,
    Abilities,
    ListPage,
    every_page,
)
from canopy.providers.openstack import flavors as flavor_choice
from canopy.providers.openstack.capacity import capacity_of, hypervisor_totals
from canopy.providers.openstack.client import NovaClient
from canopy.providers.openstack.listing import ServerListing
from canopy.providers.openstack.managed_flavors import FlavorKeeper
from canopy.providers.openstack.networks import is_uuid, network_id
from canopy.providers.openstack.options import AUTO_NETWORK, NO_NETWORK, OpenStackOptions
from canopy.providers.openstack.states import is_no_valid_host, server_name, to_remote

T = TypeVar("T")

_ACTIONS: Mapping[PowerAction, dict[str, Any]] = {
    PowerAction.START: {"os-start": None},
    PowerAction.STOP: {"os-stop": None},
    PowerAction.REBOOT_SOFT: {"reboot": {"type": "SOFT"}},
    PowerAction.REBOOT_HARD: {"reboot": {"type": "HARD"}},
}
# The state an action leaves a server in: a 409 for a server already there is success.
_TARGET: Mapping[PowerAction, RemoteState] = {
    PowerAction.START: RemoteState.RUNNING,
    PowerAction.STOP: RemoteState.STOPPED,
}
_FLAVORS_TTL = timedelta(minutes=5)
_ZONES_TTL = timedelta(minutes=1)


class OpenStackCompute:
    """One OpenStack region's compute service (implements providers.base.Compute)."""

    def __init__(
        self,
        name: str,
        options: OpenStackOptions,
        clock: Clock,
        *,
        concurrency: int = 50,
        client: NovaClient | None = None,
        credentials: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.options = options
        self._missing = {
            Ability.HOSTS: "a child OpenStack's hypervisors are its operator's to reserve "
            "(register them in that cloud's own Blazar)",
            Ability.EXACT_FLAVORS: "manage_flavors is off: a flavor boots as its mapped or "
            "nearest-fit flavor of the child's",
        }
        if options.manage_flavors:
            del self._missing[Ability.EXACT_FLAVORS]
        self.abilities = Abilities(missing=dict(self._missing))
        self._clock = clock
        self._client = client if client is not None else NovaClient(name, options, credentials)
        self._limit = asyncio.Semaphore(concurrency)
        self._flavors: tuple[datetime, list[dict[str, Any]]] | None = None
        self._zones: tuple[datetime, list[str]] | None = None
        self._network: list[dict[str, str]] | str | None = None
        self._hypervisor_stats = options.use_hypervisor_stats
        self._listing = ServerListing(self._client, self._run, clock, options)
        self._keeper = FlavorKeeper(
            name,
            options.managed_flavor_prefix,
            lambda refresh: self._flavor_list(refresh=refresh),
            self._flavor_request,
        )

    # Shared steps -----------------------------------------------------------------------

    async def _run(self, fn: Callable[[], T]) -> T:
        """Run one blocking SDK call in a thread, under this cloud's concurrency limit."""
        async with self._limit:
            return await asyncio.to_thread(fn)

    async def _call(
        self,
        method: str,
        path: str,
        operation: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        missing_ok: bool = False,
        zone: str | None = None,
    ) -> Any:
        return await self._run(
            lambda: self._client.request(
                method,
                path,
                operation,
                body=body,
                params=params,
                missing_ok=missing_ok,
                zone=zone,
            )
        )

    # The Compute protocol ---------------------------------------------------------------

    async def zones(self) -> builtins.list[str]:
        """The child's available zones (those of `options.zones` only, when it is set)."""
        now = self._clock.now()
        if self._zones is not None and now - self._zones[0] < _ZONES_TTL:
            return list(self._zones[1])
        data = await self._call("GET", "/os-availability-zone", "zones") or {}
        names = [
            str(z["zoneName"])
            for z in data.get("availabilityZoneInfo") or []
            if (z.get("zoneState") or {}).get("available") and z.get("zoneName")
        ]
        if self.options.zones:
            names = [z for z in names if z in self.options.zones]
        self._zones = (now, names)
        return list(names)

    async def capacity(self) -> Capacity:
        """The project's quota headroom (`limits`), narrowed by the hypervisors' free room
        when the credentials may read it (admin)."""
        data = await self._call("GET", "/limits", "capacity") or {}
        return capacity_of(data, await self._hypervisor_totals())

    async def _hypervisor_totals(self) -> dict[str, int] | None:
        if not self._hypervisor_stats:
            return None
        try:
            totals = await self._run(lambda: hypervisor_totals(self._client))
        except CloudError as e:
            if isinstance(e, TransientError):
                raise
            totals = None
        if totals is None:
            self._hypervisor_stats = False  # not admin here: limits alone, from now on
        return totals

    async def offerings(self) -> builtins.list[Offering]:
        """The child's flavors, priced by `price_per_vcpu_hour` / `price_per_gb_ram_hour`."""
        return [
            flavor_choice.offering(
                f, self.price_per_hour(int(f.get("vcpus") or 0), int(f.get("ram") or 0))
            )
            for f in await self._flavor_list(refresh=True)
            if not f.get("OS-FLV-DISABLED:disabled")
        ]

    @property
    def takes_any_size(self) -> bool:
        """Whether every canopy flavor runs here at its own size (inventory maps each one
        to itself): with `manage_flavors`, until the child refuses to create a flavor."""
        return self.options.manage_flavors and self._keeper.refused is None

    def price_per_hour(self, vcpus: int, ram_mb: int) -> float:
        o = self.options
        return vcpus * o.price_per_vcpu_hour + ram_mb / 1024 * o.price_per_gb_ram_hour

    async def _flavor_list(self, *, refresh: bool = False) -> builtins.list[dict[str, Any]]:
        now = self._clock.now()
        if not refresh and self._flavors is not None and now - self._flavors[0] < _FLAVORS_TTL:
            return self._flavors[1]
        data = (
            await self._call("GET", "/flavors/detail", "list flavors", params={"is_public": "None"})
            or {}
        )
        listed = [dict(f) for f in data.get("flavors") or []]
        self._flavors = (now, listed)
        return listed

    async def _flavor_request(
        self,
        method: str,
        path: str,
        operation: str,
        *,
        body: Mapping[str, Any] | None = None,
        duplicate: bool = False,
        missing_ok: bool = False,
    ) -> Any:
        """One call of the managed flavors' (a 409 on create means the name is taken)."""
        req = self._client.request
        kw: dict[str, Any] = {"body": body, "missing_ok": missing_ok, "duplicate": duplicate}
        return await self._run(lambda: req(method, path, operation, **kw))

    async def _flavor_id(self, spec: ServerSpec) -> str:
        """The child's flavor for `spec`: with `manage_flavors` and no explicit map entry,
        canopy's own of exactly its size and extra specs; else the mapping placement chose,
        the explicit map, else the smallest that fits. A missing one is a capacity error
        here (no size of this cloud fits), so placement moves on."""
        explicit = self.options.flavor_map.get(spec.flavor_name)
        wanted = spec.remote_flavor or explicit
        if explicit is None and self.options.manage_flavors:
            made = await self._keeper.flavor_id(spec.flavor_name, spec.resources, spec.extra_specs)
            if made is not None:
                return made
            self.abilities = Abilities(
                missing={**self._missing, Ability.EXACT_FLAVORS: str(self._keeper.refused)}
            )
            if wanted == spec.flavor_name:  # mapped to itself while managed: no choice
                wanted = None
        if wanted is not None:
            for refresh in (False, True):
                found = flavor_choice.named(await self._flavor_list(refresh=refresh), wanted)
                if found is not None:
                    return str(found["id"])
            raise CloudError(
                f"cloud {self.name!r}: flavor {wanted!r} (for {spec.flavor_name}) does not exist",
                cloud=self.name,
            )
        fit = flavor_choice.nearest_fit(await self._flavor_list(), spec.resources)
        if fit is None:
            raise CapacityError(
                f"cloud {self.name!r}: no flavor fits {spec.flavor_name} "
                f"({spec.resources.vcpus} vcpus, {spec.resources.ram_mb} MB)",
                cloud=self.name,
                zone=spec.zone,
            )
        return str(fit["id"])

    async def _networks(self) -> builtins.list[dict[str, str]] | str:
        """`networks` of a create: "none", "auto", or the configured network by id. An id
        is given to Nova as it is (Nova checks it with its Neutron, and a wrong one fails
        the create with Nova's fault); only a name is looked up in Neutron."""
        net = self.options.network
        if net in (NO_NETWORK, AUTO_NETWORK):
            return net
        if is_uuid(net):
            return [{"uuid": net}]
        if self._network is None:
            conn = self._client._conn
            found = await self._run(lambda: network_id(conn, net, self.name))
            self._network = [{"uuid": found}]
        return self._network

    async def create(self, spec: ServerSpec) -> RemoteServer:
        """Find the server carrying `spec.canopy_id`, else create it; then wait (up to
        `schedule_wait_seconds`) until the child has scheduled it."""
        found = None if spec.first_attempt else await self.find(spec.canopy_id)
        if found is not None:
            if found.state == RemoteState.ERROR and is_no_valid_host(found.fault):
                await self.delete(found.remote_id)
                raise self._no_host(found, spec)
            return found
        server: dict[str, Any] = {
            "name": server_name(spec.name, spec.canopy_id),
            "imageRef": spec.remote_image,
            "flavorRef": await self._flavor_id(spec),
            "networks": await self._networks(),
            "metadata": {
                **spec.metadata,
                CANOPY_ID_META: spec.canopy_id,
                **({INSTALLATION_META: spec.installation} if spec.installation else {}),
            },
        }
        if spec.key_name:
            server["key_name"] = spec.key_name
        if spec.user_data:
            server["user_data"] = spec.user_data
        if spec.zone:
            server["availability_zone"] = spec.zone
        data = await self._call(
            "POST", "/servers", "create", body={"server": server}, zone=spec.zone
        )
        remote_id = str(data["server"]["id"])
        return await self._scheduled(remote_id, spec)

    async def _scheduled(self, remote_id: str, spec: ServerSpec) -> RemoteServer:
        """The new server once the child's scheduler has placed it (or given up): one
        listing for every waiting create (schedule_watch.py), then by id at the end."""
        wait = self.options.schedule_wait_seconds
        raw = await self._listing.watch.wait(remote_id, wait) if wait > 0 else None
        if raw is None:
            data = await self._call("GET", f"/servers/{remote_id}", "get", missing_ok=True)
            raw = (data or {}).get("server")
        if raw is None:  # deleted meanwhile (by an operator): report it gone
            return RemoteServer(remote_id, spec.canopy_id, "", RemoteState.DELETED)
        remote = to_remote(raw)
        if remote.state == RemoteState.ERROR and is_no_valid_host(remote.fault):
            await self.delete(remote_id)
            raise self._no_host(remote, spec)
        return remote

    def _no_host(self, remote: RemoteServer, spec: ServerSpec) -> CapacityError:
        return CapacityError(
            f"cloud {self.name!r}: no room for {spec.flavor_name}: {remote.fault}",
            cloud=self.name,
            zone=spec.zone or remote.zone,
        )

    async def import_keypair(self, name: str, public_key: str) -> None:
        """Import a public key as `name` (ability KEYPAIRS); AlreadyExists if it is taken."""
        body = {"keypair": {"name": name, "public_key": public_key}}
        await self._run(
            lambda: self._client.request(
                "POST", "/os-keypairs", "import keypair", body=body, duplicate=True
            )
        )

    async def find(self, canopy_id: str) -> RemoteServer | None:
        """The live server carrying `canopy_id` (the oldest, if there are copies)."""
        return await self._listing.find(canopy_id)

    async def get(self, remote_id: str) -> RemoteServer | None:
        """One server by id; None if the child does not have it (or it is deleted)."""
        data = await self._call("GET", f"/servers/{remote_id}", "get", missing_ok=True)
        raw = (data or {}).get("server")
        if raw is None:
            return None
        remote = to_remote(raw)
        return None if remote.state == RemoteState.DELETED else remote

    async def list(self, changes_since: datetime | None = None) -> builtins.list[RemoteServer]:
        """Every page of `list_page`."""
        return await every_page(self, changes_since, self.options.page_size)

    async def list_page(
        self, changes_since: datetime | None, marker: str | None, limit: int
    ) -> ListPage:
        """Canopy-tagged servers: the live ones, or with `changes_since` those changed
        since then less the overlap window (deleted ones included, as DELETED). One
        `GET /servers/detail` page, in Nova's order (creation, newest first); a marker
        whose server Nova no longer has is paged past (listing.py, paging.py)."""
        return await self._listing.page(changes_since, marker, limit)

    async def delete(self, remote_id: str) -> None:
        """Delete a server; one the child does not have is success."""
        await self._call("DELETE", f"/servers/{remote_id}", "delete", missing_ok=True)

    async def power(self, remote_id: str, action: PowerAction) -> None:
        """Start, stop or reboot. A 409 for a server already in the state asked for (a
        start of a running server) is success; other 409s are transient (a task runs)."""
        try:
            await self._call(
                "POST", f"/servers/{remote_id}/action", f"power {action}", body=_ACTIONS[action]
            )
        except TransientError:
            target = _TARGET.get(action)
            if target is not None:
                now = await self.get(remote_id)
                if now is not None and now.state == target:
                    return
            raise

    async def close(self) -> None:
        await self._listing.watch.close()
        await asyncio.to_thread(self._client.close)
