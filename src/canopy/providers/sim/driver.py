"""The `sim` driver: a simulated cloud that behaves like a real one.

It has hosts with finite room, account quotas, API latency, boot times, prices and
injected faults, and keeps its state in an SQLite file of its own (see state.py), so it
outlives a crash of canopy and can be shared by several canopy processes. A server's
status follows from its timestamps (see status.py): nothing runs in the background.
"""

from __future__ import annotations

import asyncio
import builtins
import sqlite3
import uuid
from datetime import datetime
from pathlib import Path

from canopy.domain.clock import Clock
from canopy.domain.errors import CloudAuthError, TransientError, Unsupported
from canopy.domain.specs import Capacity, Offering, RemoteServer, ServerSpec
from canopy.domain.states import Ability, PowerAction
from canopy.providers.base import Abilities, HostInfo, ListPage, every_page, remote_name
from canopy.providers.sim import hosts, keypairs, listing
from canopy.providers.sim.creates import CreateRecord, records
from canopy.providers.sim.faults import Dice
from canopy.providers.sim.options import SimSettings
from canopy.providers.sim.pricing import sim_price_per_hour
from canopy.providers.sim.state import NewServer, SimStore
from canopy.providers.sim.status import to_remote, to_us

# Servers per page of `list` (sync asks for pages of its own size).
PAGE = 1000


def _us(seconds: float) -> int:
    """Seconds as whole microseconds, the unit of the state file's timestamps."""
    return round(seconds * 1_000_000)


class SimCompute:
    """The compute service of one simulated cloud (implements providers.base.Compute).

    Every API call first waits an API latency on the injected clock, then may fail with
    an injected TransientError before doing anything. All randomness comes from `seed`,
    so a failing run replays exactly. `lost_response_rate` makes a create that succeeded
    raise TransientError after its commit ("created, but the response was lost"), to
    test that canopy's retry finds the server instead of creating a second one.

    The `*_out_of_band` methods and `all_servers` are what an operator does behind
    canopy's back, for tests; they have no latency and no injected faults. `create_log`
    is the sim's own record of the creates it answered (see creates.py).
    """

    def __init__(
        self,
        name: str,
        settings: SimSettings,
        state_file: Path,
        clock: Clock,
        seed: int,
        *,
        lost_response_rate: float = 0.0,
    ) -> None:
        if not 0.0 <= lost_response_rate <= 1.0:
            raise ValueError(f"lost_response_rate must be within [0, 1], got {lost_response_rate}")
        self.name = name
        # What an operator declared this cloud cannot do (`missing_abilities`), to test
        # that canopy refuses such requests up front.
        self.abilities = Abilities(missing=dict(settings.missing_abilities))
        # Any canopy image id boots here, mapped or not (see providers.base).
        self.boots_any_image = True
        # Read on every call, so a test may change a rate on a live cloud.
        self.settings = settings
        self.state_file = state_file
        self.seed = seed
        self.lost_response_rate = lost_response_rate
        self._clock = clock
        self._dice = Dice(seed)
        self._store = SimStore(state_file, settings, name)

    # Shared steps -----------------------------------------------------------------------

    async def _api_call(self, operation: str) -> None:
        """What every API call goes through first: its latency, then maybe a transient fault."""
        s = self.settings
        await self._clock.sleep(self._dice.around(s.api_latency_ms / 1000.0, s.latency_jitter))
        if s.refuse_credentials:
            raise CloudAuthError(
                f"cloud {self.name!r}: {operation} failed: 401 Unauthorized: the request you "
                "have made requires authentication (injected fault)",
                cloud=self.name,
            )
        if self._dice.chance(s.transient_error_rate):
            raise TransientError(
                f"cloud {self.name!r}: {operation} failed: 503 Service Unavailable "
                "(injected fault)",
                cloud=self.name,
            )

    def _now_us(self) -> int:
        return to_us(self._clock.now())

    # The Compute protocol ---------------------------------------------------------------

    async def zones(self) -> builtins.list[str]:
        """The zones of `settings.zones` (its hosts are dealt round them); none by default."""
        await self._api_call("zones")
        return list(self.settings.zones)

    async def hosts(self) -> builtins.list[HostInfo]:
        """Its hosts (the `hosts` ability: Blazar's os-hosts registers them); read from its
        own state, with no API latency or injected fault (a declaration, like zones)."""
        rows = await self._store.call(hosts.listing)
        return [
            HostInfo(name=h, vcpus=v, memory_mb=r, local_gb=d, zone=z) for h, v, r, d, z in rows
        ]

    async def capacity(self) -> Capacity:
        """Room left across all hosts, narrowed by the account quotas when they are set."""
        await self._api_call("capacity")
        u = await self._store.call(hosts.usage)
        s = self.settings
        vcpus_total, vcpus_free = u.vcpus, u.vcpus - u.used_vcpus
        if s.quota_vcpus is not None:
            # A quota below the hosts' size is the real limit, for totals as for headroom.
            vcpus_total = min(vcpus_total, s.quota_vcpus)
            vcpus_free = min(vcpus_free, max(0, s.quota_vcpus - u.used_vcpus))
        instances_free = (
            None if s.quota_instances is None else max(0, s.quota_instances - u.used_instances)
        )
        return Capacity(
            vcpus_total=vcpus_total,
            ram_mb_total=u.ram_mb,
            instances_total=s.quota_instances,
            vcpus_free=vcpus_free,
            ram_mb_free=u.ram_mb - u.used_ram_mb,
            instances_free=instances_free,
        )

    async def offerings(self) -> builtins.list[Offering]:
        """None: the sim has no fixed instance types and prices any size (price_per_hour)."""
        await self._api_call("offerings")
        return []

    def price_per_hour(self, vcpus: int, ram_mb: int) -> float:
        """What a server of this size costs per hour on this cloud."""
        return sim_price_per_hour(self.settings, vcpus, ram_mb)

    async def create(self, spec: ServerSpec) -> RemoteServer:
        """Create a server tagged `spec.canopy_id`, or return the live one already tagged.

        With `atomic_create` (EC2 with a ClientToken) the lookup and the insert are one
        transaction, and the canopy id is the client token. Without it (Nova, the default)
        they are two API calls, a lookup and then the create, each with its latency: two
        creates for one canopy id that overlap both find nothing and both create, as they
        would on Nova, which has no client token. A first attempt skips the look-up.
        """
        await self._api_call("create")
        s = self.settings
        # All draws happen here, on the event loop, so their order is reproducible.
        refuse = None
        if self._dice.chance(s.capacity_error_rate):
            refuse = (
                f"cloud {self.name!r}: insufficient capacity for {spec.flavor_name} "
                "(injected fault)"
            )
        failed = self._dice.chance(s.boot_failure_rate)
        lost = self._dice.chance(self.lost_response_rate)
        boot = self._dice.around(s.boot_seconds, s.boot_jitter)
        if s.atomic_create:
            new = self._new_server(spec, boot, failed, client_token=spec.canopy_id)
            row, inserted = await self._store.call(
                lambda c: self._store.create(c, new, atomic=True, refuse=refuse)
            )
        else:
            if not spec.first_attempt:  # the look-up, an API call of its own
                now = self._now_us()
                found = await self._store.call(
                    lambda c: self._store.returned(c, spec.canopy_id, now)
                )
                if found is not None:
                    return to_remote(found, now)
                # The create call itself: nothing holds the canopy id meanwhile.
                await self._clock.sleep(
                    self._dice.around(s.api_latency_ms / 1000.0, s.latency_jitter)
                )
            new = self._new_server(spec, boot, failed)
            row, inserted = await self._store.call(
                lambda c: self._store.create(c, new, atomic=False, refuse=refuse)
            )
        if inserted and lost:
            raise TransientError(
                f"cloud {self.name!r}: create timed out after the server was accepted "
                "(injected fault: response lost)",
                cloud=self.name,
            )
        return to_remote(row, new.now_us)

    def _new_server(
        self, spec: ServerSpec, boot: float, failed: bool, client_token: str | None = None
    ) -> NewServer:
        """The server `spec` asks for, created now and ready after `boot` seconds."""
        now = self._now_us()
        r = spec.resources
        return NewServer(
            remote_id=str(uuid.uuid4()),
            canopy_id=spec.canopy_id,
            name=remote_name(spec.name, spec.canopy_id),
            flavor=spec.remote_flavor or spec.flavor_name,
            vcpus=r.vcpus,
            ram_mb=r.ram_mb,
            disk_gb=r.disk_gb,
            image=spec.remote_image,
            now_us=now,
            ready_at_us=now + _us(boot),
            failed=failed,
            client_token=client_token,
            key_name=spec.key_name,
            user_data=spec.user_data,
            zone=spec.zone,
            installation=spec.installation,
            host=spec.host,
            exclude_hosts=spec.exclude_hosts,
        )

    async def import_keypair(self, name: str, public_key: str) -> None:
        """Import a public key as `name` (ability KEYPAIRS); AlreadyExists if it is taken."""
        await self._api_call("import keypair")
        now = self._now_us()
        cloud = self._store.cloud
        await self._store.call(lambda c: keypairs.import_key(c, cloud, name, public_key, now))

    async def find(self, canopy_id: str) -> RemoteServer | None:
        """The live server tagged `canopy_id` (the oldest, if an operator made copies)."""
        await self._api_call("find")
        row = await self._store.call(lambda c: SimStore.find(c, canopy_id))
        return None if row is None else to_remote(row, self._now_us())

    async def get(self, remote_id: str) -> RemoteServer | None:
        """One live server by remote id; None if it never existed or was deleted."""
        await self._api_call("get")
        row = await self._store.call(lambda c: SimStore.get(c, remote_id))
        return None if row is None else to_remote(row, self._now_us())

    async def delete(self, remote_id: str) -> None:
        """Soft-delete a server, freeing its room at once; a missing one is success."""
        await self._api_call("delete")
        now = self._now_us()
        await self._store.call(lambda c: self._store.delete(c, remote_id, now))

    async def power(self, remote_id: str, action: PowerAction) -> None:
        """Start, stop or reboot; the action takes `settings.action_seconds` to complete."""
        if action in (PowerAction.START, PowerAction.STOP) and not self.abilities.has(
            Ability.STOP_START
        ):
            raise Unsupported(
                f"cloud {self.name!r} cannot {action} servers: "
                f"{self.abilities.why_not(Ability.STOP_START)}",
                cloud=self.name,
            )
        await self._api_call(f"power {action}")
        await self._power(remote_id, action)

    async def _power(self, remote_id: str, action: PowerAction) -> None:
        now = self._now_us()
        until = now + _us(self.settings.action_seconds)
        await self._store.call(lambda c: self._store.power(c, remote_id, action, now, until))

    async def list(self, changes_since: datetime | None = None) -> builtins.list[RemoteServer]:
        """Every page of `list_page`: one API call each."""
        return await every_page(self, changes_since, PAGE)

    async def list_page(
        self, changes_since: datetime | None, marker: str | None, limit: int
    ) -> ListPage:
        """Canopy-tagged servers: all live ones, or those changed since (deleted included),
        in the order they were created (the marker is the last one's sequence number).

        A change includes a boot or power action that completed by now, as Nova's
        updated_at moves when a server becomes ACTIVE. With `list_untagged`, servers made
        without a canopy id are listed too, as a cloud that cannot filter by tag would
        (canopy must leave them alone).
        """
        await self._api_call("list")
        now = self._now_us()
        tagged = not self.settings.list_untagged
        # In chunks, the loop given back between them (listing.page): a page of 1,000
        # read at once held the loop for about 10 ms (bench/sync_holds.py). A read never
        # waits for the write lock in WAL mode.
        since = None if changes_since is None else to_us(changes_since)
        return await listing.page(self._store, since, now, tagged, marker, limit)

    async def close(self) -> None:
        """Close the state file's connections; the state itself stays on disk."""
        await asyncio.to_thread(self._store.close)

    # Behind canopy's back (tests) -------------------------------------------------------

    async def create_out_of_band(
        self,
        canopy_id: str | None,
        name: str,
        *,
        vcpus: int = 1,
        ram_mb: int = 512,
        disk_gb: int = 1,
        image: str = "cirros",
        flavor: str | None = None,
        boot_seconds: float = 0.0,
        failed: bool = False,
        zone: str | None = None,
        installation: str | None = None,
    ) -> RemoteServer:
        """Create a server as an operator would, named `name` verbatim.

        `canopy_id` None makes an untagged server (canopy must ignore it); a canopy_id that
        is already in use makes a duplicate (canopy must collect the leak). Hosts and
        quotas still apply, as they would to the operator.
        """
        now = self._now_us()
        new = NewServer(
            remote_id=str(uuid.uuid4()),
            canopy_id=canopy_id,
            name=name,
            flavor=flavor,
            vcpus=vcpus,
            ram_mb=ram_mb,
            disk_gb=disk_gb,
            image=image,
            now_us=now,
            ready_at_us=now + _us(boot_seconds),
            failed=failed,
            client_token=None,
            zone=zone,
            installation=installation,
        )
        row, _ = await self._store.call(
            lambda c: self._store.create(c, new, atomic=False, logged=False)
        )
        return to_remote(row, now)

    async def delete_out_of_band(self, remote_id: str) -> bool:
        """Delete a server as an operator would; True if a live one was deleted."""
        now = self._now_us()
        return await self._store.call(lambda c: self._store.delete(c, remote_id, now))

    async def power_out_of_band(self, remote_id: str, action: PowerAction) -> None:
        """Start, stop or reboot a server as an operator would (same rules as `power`)."""
        await self._power(remote_id, action)

    async def all_servers(self, include_deleted: bool = False) -> builtins.list[RemoteServer]:
        """Every server on the cloud, tagged or not, oldest first (for test assertions)."""
        now = self._now_us()
        rows = await self._store.call(
            lambda c: listing.servers(c, tagged_only=False, include_deleted=include_deleted)
        )
        return [to_remote(row, now) for row in rows]

    async def keypairs(self) -> dict[str, str]:
        """Every imported keypair, name -> public key (for test assertions)."""
        return await self._store.call(keypairs.every)

    async def key_name_of(self, remote_id: str) -> str | None:
        """The keypair a server was booted with, by remote id (for test assertions)."""
        row = await self._store.call(lambda c: SimStore.get(c, remote_id, include_deleted=True))
        return None if row is None else row.key_name

    async def host_of(self, remote_id: str) -> str | None:
        """The host a server runs on, by remote id (for test assertions)."""

        def read(c: sqlite3.Connection) -> str | None:
            row = c.execute("SELECT host FROM servers WHERE remote_id = ?", (remote_id,)).fetchone()
            return None if row is None else str(row[0])

        return await self._store.call(read)

    async def user_data_of(self, remote_id: str) -> str | None:
        """The user data a server was booted with, by remote id (for test assertions)."""
        row = await self._store.call(lambda c: SimStore.get(c, remote_id, include_deleted=True))
        return None if row is None else row.user_data

    async def usage_drift(self) -> builtins.list[str]:
        """Hosts whose recorded usage differs from their live servers; empty when consistent."""
        return await self._store.call(hosts.usage_drift)

    async def create_log(self) -> builtins.list[CreateRecord]:
        """Every create this cloud answered through its API, oldest first (for tests)."""
        return await self._store.call(lambda c: records(c, self.name))
