"""Blazar's os-hosts, for a cloud administrator (anyone else: 403 in Blazar's body).

`GET/POST /os-hosts`, `GET/PUT/DELETE /os-hosts/{host_id}`, `GET /os-hosts/allocations`,
`GET /os-hosts/{host_id}/allocation`, `GET /os-hosts/properties`. Registering a host names
one its cloud reported (reservations/hosts.py says how). Allocations are the host
reservations holding each host from now on (reservations/host_leases.py), filtered by
`?lease_id=` / `?reservation_id=` as Blazar's.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Response
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.api.auth import CloudAdminDep
from canopy.api.deps import ClockDep, ReadSessionDep, SessionDep
from canopy.domain.clock import Clock
from canopy.reservations import host_leases
from canopy.reservations.dates import format_date
from canopy.reservations.hosts import HostService
from canopy.store.models import ReservableHost

router = APIRouter()

HostBody = Annotated[dict[str, Any], Body()]


def host_view(h: ReservableHost) -> dict[str, Any]:
    """The host as Blazar shows it, its extra capabilities as extra keys; `cloud` and
    `availability_zone` are Canopy's own."""
    out: dict[str, Any] = {
        "id": str(h.id),
        "hypervisor_hostname": f"{h.cloud}:{h.host}",
        "vcpus": h.vcpus,
        "memory_mb": h.memory_mb,
        "local_gb": h.local_gb,
        "cpu_info": "",
        "hypervisor_type": h.hypervisor_type,
        "hypervisor_version": 1,
        "service_name": h.host,
        "trust_id": None,
        "reservable": h.reservable,
        "cloud": h.cloud,
        "availability_zone": h.zone or h.cloud,
        "created_at": format_date(h.created_at),
        "updated_at": format_date(h.updated_at),
    }
    for key, value in h.extra.items():
        out.setdefault(key, value)
    return out


async def _allocations(
    s: AsyncSession,
    hosts: list[ReservableHost],
    clock: Clock,
    lease_id: str | None,
    reservation_id: str | None,
) -> list[dict[str, Any]]:
    held = await host_leases.allocations(
        s,
        [h.id for h in hosts],
        clock.now(),
        lease_id=lease_id[:64] if lease_id else None,
        reservation_id=reservation_id[:64] if reservation_id else None,
    )
    return [{"resource_id": str(h.id), "reservations": held[h.id]} for h in hosts]


@router.get("/os-hosts", summary="List the hosts registered for reservation (admin)")
async def list_hosts(ctx: CloudAdminDep, s: ReadSessionDep, clock: ClockDep) -> dict[str, Any]:
    return {"hosts": [host_view(h) for h in await HostService(clock).list(s)]}


@router.post("/os-hosts", status_code=201, summary="Register a cloud's host (admin)")
async def create_host(
    body: HostBody, ctx: CloudAdminDep, s: SessionDep, clock: ClockDep
) -> dict[str, Any]:
    return {"host": host_view(await HostService(clock).create(s, body))}


@router.get("/os-hosts/allocations", summary="What holds each registered host (admin)")
async def list_allocations(
    ctx: CloudAdminDep,
    s: ReadSessionDep,
    clock: ClockDep,
    lease_id: str | None = None,
    reservation_id: str | None = None,
) -> dict[str, Any]:
    hosts = await HostService(clock).list(s)
    return {"allocations": await _allocations(s, hosts, clock, lease_id, reservation_id)}


@router.get("/os-hosts/properties", summary="The hosts' extra capabilities (admin)")
async def list_properties(
    ctx: CloudAdminDep,
    s: ReadSessionDep,
    clock: ClockDep,
    detail: bool = False,
    all: bool = False,
) -> dict[str, Any]:
    found = await HostService(clock).properties(s)
    if detail:
        return {
            "resource_properties": [
                {"property": k, "private": False, "values": v} for k, v in found.items()
            ]
        }
    return {"resource_properties": [{"property": k} for k in found]}


@router.get("/os-hosts/{host_id}", summary="Show a registered host (admin)")
async def show_host(
    host_id: str, ctx: CloudAdminDep, s: ReadSessionDep, clock: ClockDep
) -> dict[str, Any]:
    return {"host": host_view(await HostService(clock).get(s, host_id))}


@router.get("/os-hosts/{host_id}/allocation", summary="What holds one registered host (admin)")
async def show_allocation(
    host_id: str,
    ctx: CloudAdminDep,
    s: ReadSessionDep,
    clock: ClockDep,
    lease_id: str | None = None,
    reservation_id: str | None = None,
) -> dict[str, Any]:
    host = await HostService(clock).get(s, host_id)
    return {"allocation": (await _allocations(s, [host], clock, lease_id, reservation_id))[0]}


@router.put("/os-hosts/{host_id}", summary="Set a host's extra capabilities (admin)")
async def update_host(
    host_id: str, body: HostBody, ctx: CloudAdminDep, s: SessionDep, clock: ClockDep
) -> dict[str, Any]:
    host = await HostService(clock).update(s, host_id, body)
    await s.flush()
    return {"host": host_view(host)}


@router.delete("/os-hosts/{host_id}", status_code=204, summary="Unregister a host (admin)")
async def delete_host(host_id: str, ctx: CloudAdminDep, s: SessionDep, clock: ClockDep) -> Response:
    await HostService(clock).delete(s, host_id)
    return Response(status_code=204)
