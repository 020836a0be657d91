"""Hosts registered for reservation (Blazar's os-hosts), for a cloud administrator.

A host is named `<cloud>:<host>` (or by the cloud's own host name when exactly one cloud
has a host of that name) and must be one the cloud's driver reported (`clouds.hosts`,
written by the inventory; the API never asks a cloud). A cloud whose driver lacks the
`hosts` ability is refused with 400 and the driver's reason. A host with servers on it is
refused with Blazar's HostHavingServers (409, see host_occupants). Extra capabilities are
string values under keys of the administrator's choosing, shown as extra keys of the
host.

A registered host leaves the ordinary pool (Blazar's freepool): registering it writes an
open-ended claim of its whole size on its cloud (owner `host:<id>`), so the scheduler never
gives that capacity to an ordinary server, and the driver is told to keep unpinned
servers off it (`ServerSpec.exclude_hosts`). Only servers booted into a host reservation
(`--hint reservation=<id>`) run there, pinned to it. Registering is refused (409) when the
cloud's ordinary use leaves no room for the host at some instant from now on. A host a
lease still holds cannot be deleted (409, as Blazar's "The host is reserved"), and an
extra capability that a reservation holding the host names in its queries cannot be
changed or removed (409, as Blazar's "Can't add extracapabilities"), so a held host always
matches the queries of the reservations holding it.
"""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.domain.clock import Clock
from canopy.domain.errors import Conflict, InvalidRequest, NotFound
from canopy.domain.states import Ability
from canopy.reservations import host_query
from canopy.reservations.host_occupants import refuse_occupied
from canopy.store import claim_counts
from canopy.store.claims import claim_row, peaks_by_cloud
from canopy.store.models import Claim, Cloud, HostAllocation, ReservableHost, Reservation


def pool_owner(host_id: int) -> str:
    """The owner of the claim that keeps a registered host out of the ordinary pool."""
    return f"host:{host_id}"


# The keys a host shows of its own: an extra capability may not take one.
FIELDS = frozenset(
    {
        "id",
        "name",
        "hypervisor_hostname",
        "vcpus",
        "memory_mb",
        "local_gb",
        "cpu_info",
        "hypervisor_type",
        "hypervisor_version",
        "service_name",
        "trust_id",
        "created_at",
        "updated_at",
        "reservable",
        "status",
        "cloud",
        "availability_zone",
        "values",
    }
)
MAX_EXTRAS = 64
MAX_KEY = 64
MAX_VALUE = 255


def _extras(body: dict[str, Any], *, deleting: bool) -> dict[str, str | None]:
    """The extra capabilities in `body` (key -> value; None deletes, on update only)."""
    out: dict[str, str | None] = {}
    for key, value in body.items():
        if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY:
            raise InvalidRequest(f"extra capability names are 1 to {MAX_KEY} characters")
        if key in FIELDS:
            raise InvalidRequest(f"{key!r} is a field of the host, not an extra capability")
        if value is None and deleting:
            out[key] = None
        elif isinstance(value, bool):
            out[key] = str(value)
        elif isinstance(value, (str, int, float)):
            text = str(value)
            if len(text) > MAX_VALUE:
                raise InvalidRequest(f"extra capability {key!r}: at most {MAX_VALUE} characters")
            out[key] = text
        else:
            raise InvalidRequest(f"extra capability {key!r} must be a string, number or boolean")
    if len(out) > MAX_EXTRAS:
        raise InvalidRequest(f"at most {MAX_EXTRAS} extra capabilities")
    return out


async def _clouds(s: AsyncSession) -> list[Cloud]:
    return list(
        (
            await s.execute(select(Cloud).where(Cloud.removed_at.is_(None)).order_by(Cloud.name))
        ).scalars()
    )


def _lacks_hosts(c: Cloud) -> str | None:
    why = (c.abilities or {}).get(Ability.HOSTS.value)
    return None if why is None else str(why)


async def _resolve(s: AsyncSession, name: str) -> tuple[Cloud, dict[str, Any]]:
    """The cloud and the reported host `name` names; 400 saying why when none does."""
    clouds = await _clouds(s)
    if ":" in name:
        cloud_name, host = name.split(":", 1)
        cloud = next((c for c in clouds if c.name == cloud_name), None)
        if cloud is None:
            raise InvalidRequest(f"Host {name!r}: there is no cloud {cloud_name!r}")
        why = _lacks_hosts(cloud)
        if why is not None:
            raise InvalidRequest(
                f"Host {name!r}: cloud {cloud.name!r} lacks the 'hosts' ability "
                f"(its driver does not list physical hosts): {why}"
            )
        if cloud.hosts is None:
            raise Conflict(
                f"Host {name!r}: cloud {cloud.name!r} has not reported its hosts yet "
                "(its inventory has not run); try again shortly"
            )
        found = next((h for h in cloud.hosts if h.get("name") == host), None)
        if found is None:
            known = ", ".join(str(h.get("name")) for h in cloud.hosts[:20]) or "none"
            raise InvalidRequest(
                f"Host {name!r}: cloud {cloud.name!r} has no host {host!r} (its hosts: {known})"
            )
        return cloud, found
    matches = [(c, h) for c in clouds for h in (c.hosts or []) if h.get("name") == name]
    if len(matches) == 1:
        return matches[0]
    if matches:
        where = ", ".join(f"{c.name}:{name}" for c, _ in matches)
        raise InvalidRequest(f"Host {name!r} is on more than one cloud: name one of {where}")
    lacking = [c.name for c in clouds if _lacks_hosts(c) is not None]
    hint = f" ({', '.join(lacking)} lack the 'hosts' ability)" if lacking else ""
    raise InvalidRequest(
        f"Host {name!r}: no cloud reports a host of that name{hint}; name it as <cloud>:<host>"
    )


async def _updatable(
    s: AsyncSession, host: ReservableHost, changes: dict[str, str | None], now: datetime
) -> None:
    """Blazar's `is_updatable_extra_capability`: a capability that a reservation holding
    the host from now on names in its queries cannot change or go (409, Blazar's
    CantAddExtraCapability, and nothing changes); new capabilities are always fine. The
    host row is locked first, so no lease takes the host while this looks."""
    touched = {k for k, v in changes.items() if k in host.extra and host.extra[k] != v}
    if not touched:
        return
    rows = await s.execute(
        select(Reservation)
        .join(HostAllocation, HostAllocation.reservation_id == Reservation.id)
        .where(HostAllocation.host_id == host.id, HostAllocation.end_at > now)
        .order_by(Reservation.id)
    )
    named: dict[str, list[str]] = {}
    for r in rows.scalars().unique():
        for field in ("hypervisor_properties", "resource_properties"):
            for term in host_query.parse(getattr(r, field) or "", field):
                if term.field in touched:
                    named.setdefault(term.field, []).append(r.id)
    if named:
        keys = sorted(named)
        why = "; ".join(
            f"{k!r} is named by reservation {', '.join(sorted(set(named[k])))}" for k in keys
        )
        raise Conflict(
            f"Can't add extracapabilities {keys} to Host {host.id}: existing reservations "
            f"require them ({why}). Change them once those leases have ended."
        )


class HostService:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    async def list(self, s: AsyncSession) -> list[ReservableHost]:
        return list((await s.execute(select(ReservableHost).order_by(ReservableHost.id))).scalars())

    async def get(self, s: AsyncSession, host_id: str, *, lock: bool = False) -> ReservableHost:
        if not host_id.isdigit() or len(host_id) > 18:
            raise NotFound(f"Host {host_id} not found.")
        host = await s.get(ReservableHost, int(host_id), with_for_update=lock)
        if host is None:
            raise NotFound(f"Host {host_id} not found.")
        return host

    async def create(self, s: AsyncSession, body: dict[str, Any]) -> ReservableHost:
        name = body.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 320:
            raise InvalidRequest("'name' is required: the host to register, <cloud>:<host>")
        extras = _extras({k: v for k, v in body.items() if k != "name"}, deleting=False)
        cloud, found = await _resolve(s, name.strip())
        host_name = str(found["name"])
        taken = (
            await s.execute(
                select(ReservableHost.id).where(
                    ReservableHost.cloud == cloud.name, ReservableHost.host == host_name
                )
            )
        ).scalar_one_or_none()
        if taken is not None:
            raise Conflict(f"Host {cloud.name}:{host_name} is already registered (id {taken})")
        locked = await s.get(Cloud, cloud.name, with_for_update=True, populate_existing=True)
        assert locked is not None
        now = self.clock.now()
        size = (int(found["vcpus"]), int(found["memory_mb"]))
        peak = (await peaks_by_cloud(s, [cloud.name], now))[cloud.name]
        for cap, used, need, unit in (
            (locked.vcpus_capacity, peak.vcpus, size[0], "vcpus"),
            (locked.ram_mb_capacity, peak.ram_mb, size[1], "MB ram"),
        ):
            if cap is not None and cap - used < need:
                raise Conflict(
                    f"Host {cloud.name}:{host_name} cannot leave the ordinary pool: cloud "
                    f"{cloud.name} has {max(cap - used, 0)} {unit} free at its busiest from "
                    f"now on and the host has {need}; free its servers first"
                )
        # Under the cloud's lock: no server is placed on this cloud while it looks.
        await refuse_occupied(s, cloud.name, host_name, name.strip())
        host = ReservableHost(
            cloud=cloud.name,
            host=host_name,
            zone=str(found.get("zone") or ""),
            hypervisor_type=cloud.driver,
            vcpus=int(found["vcpus"]),
            memory_mb=int(found["memory_mb"]),
            local_gb=int(found["local_gb"]),
            reservable=True,
            extra={k: v for k, v in extras.items() if v is not None},
            created_at=self.clock.now(),
            updated_at=None,
        )
        s.add(host)
        await s.flush()
        s.add(
            Claim(
                **claim_row(
                    locked,
                    reservation_id=pool_owner(host.id),
                    vcpus=host.vcpus,
                    ram_mb=host.memory_mb,
                    disk_gb=host.local_gb,
                    instances=0,
                    price_per_hour_micros=0,
                    now=now,
                )
            )
        )
        await s.flush()
        return host

    async def update(self, s: AsyncSession, host_id: str, body: dict[str, Any]) -> ReservableHost:
        """Set extra capabilities (a null value deletes one). python-blazarclient sends
        them under `values`; Blazar also takes them at the top level."""
        values = body.get("values", body) if set(body) == {"values"} else body
        if not isinstance(values, dict):
            raise InvalidRequest("'values' must be an object of extra capabilities")
        changes = _extras(values, deleting=True)
        host = await self.get(s, host_id, lock=True)
        await _updatable(s, host, changes, self.clock.now())
        if changes:
            extra = dict(host.extra)
            for key, value in changes.items():
                if value is None:
                    extra.pop(key, None)
                else:
                    extra[key] = value
            if len(extra) > MAX_EXTRAS:
                raise InvalidRequest(f"at most {MAX_EXTRAS} extra capabilities")
            host.extra = extra
            host.updated_at = self.clock.now()
        return host

    async def delete(self, s: AsyncSession, host_id: str) -> None:
        """Unregister a host no lease holds: its capacity returns to the ordinary pool."""
        probe = await self.get(s, host_id)
        # The cloud first, as a create locks it: its counters give the claim back.
        await s.get(Cloud, probe.cloud, with_for_update=True, populate_existing=True)
        host = await self.get(s, host_id, lock=True)
        held = await s.scalar(
            select(HostAllocation.reservation_id).where(HostAllocation.host_id == host.id).limit(1)
        )
        if held is not None:
            raise Conflict(
                f"Can't delete host {host.id}. The host is reserved (reservation {held})."
            )
        given_back = await claim_counts.drop(s, Claim.reservation_id == pool_owner(host.id))
        await claim_counts.apply(s, given_back)
        await s.delete(host)
        await s.flush()

    async def properties(self, s: AsyncSession) -> dict[str, builtins.list[str]]:
        """Every extra capability key with its values, over all registered hosts."""
        seen: dict[str, set[str]] = {}
        for host in await self.list(s):
            for key, value in host.extra.items():
                seen.setdefault(key, set()).add(str(value))
        return {k: sorted(v) for k, v in sorted(seen.items())}
