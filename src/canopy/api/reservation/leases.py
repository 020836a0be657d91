"""Blazar's leases: `GET/POST /leases`, `GET/PUT/DELETE /leases/{lease_id}`, `GET /plugins`.

A create places and claims every reservation in the request's transaction (refused with
409 and the filter that emptied the list when it does not fit); starting and ending is the
lease controller's, woken by the commit.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Response

from canopy.api.auth import AuthDep, WriterDep
from canopy.api.deps import (
    ClockDep,
    DatabaseDep,
    ReadSessionDep,
    SessionDep,
    SettingsDep,
    wake_after_commit,
)
from canopy.api.reservation.views import lease_view
from canopy.reservations.ready import readiness
from canopy.reservations.service import LeaseService
from canopy.reservations.states import FLAVOR_INSTANCE, PHYSICAL_HOST, VIRTUAL_INSTANCE
from canopy.services.servers import ServerService

router = APIRouter()

LeaseBody = Annotated[dict[str, Any], Body()]


def _service(settings: SettingsDep, db: DatabaseDep, clock: ClockDep) -> LeaseService:
    return LeaseService(settings, clock, ServerService(db, settings, clock))


async def _one(svc: LeaseService, s: Any, lease_id: str) -> dict[str, Any]:
    from canopy.store.models import Lease

    lease = await s.get(Lease, lease_id)
    res, events = await svc.details(s, [lease_id])
    carried = await readiness(s, [lease])
    return {"lease": lease_view(lease, res[lease_id], events[lease_id], carried.get(lease_id))}


@router.get("/plugins", summary="The reservation plugins (resource types) this service offers")
async def list_plugins(ctx: AuthDep) -> dict[str, Any]:
    return {
        "plugins": [
            {
                "name": VIRTUAL_INSTANCE,
                "title": "Instance reservation",
                "description": "Servers of a size (vcpus, memory_mb, disk_gb), across clouds.",
            },
            {
                "name": FLAVOR_INSTANCE,
                "title": "Flavor instance reservation",
                "description": "Servers of an existing flavor, across clouds.",
            },
            {
                "name": PHYSICAL_HOST,
                "title": "Physical host reservation",
                "description": "Whole registered hosts (os-hosts), used with "
                "--hint reservation=<id>.",
            },
        ]
    }


@router.get("/leases", summary="List the project's leases")
async def list_leases(
    ctx: AuthDep, s: ReadSessionDep, settings: SettingsDep, db: DatabaseDep, clock: ClockDep
) -> dict[str, Any]:
    svc = _service(settings, db, clock)
    leases = await svc.list(s, ctx)
    res, events = await svc.details(s, [lease.id for lease in leases])
    carried = await readiness(s, leases)
    return {"leases": [lease_view(x, res[x.id], events[x.id], carried.get(x.id)) for x in leases]}


@router.post("/leases", status_code=201, summary="Create a lease (its capacity is claimed now)")
async def create_lease(
    body: LeaseBody,
    ctx: WriterDep,
    s: SessionDep,
    settings: SettingsDep,
    db: DatabaseDep,
    clock: ClockDep,
) -> dict[str, Any]:
    svc = _service(settings, db, clock)
    lease = await svc.create(s, ctx, body)
    wake_after_commit(s)
    return await _one(svc, s, lease.id)


@router.get("/leases/{lease_id}", summary="Show a lease")
async def show_lease(
    lease_id: str,
    ctx: AuthDep,
    s: ReadSessionDep,
    settings: SettingsDep,
    db: DatabaseDep,
    clock: ClockDep,
) -> dict[str, Any]:
    svc = _service(settings, db, clock)
    await svc.get(s, ctx, lease_id)
    return await _one(svc, s, lease_id)


@router.put(
    "/leases/{lease_id}", summary="Update a lease: name, dates, reservations' amounts and sizes"
)
async def update_lease(
    lease_id: str,
    body: LeaseBody,
    ctx: WriterDep,
    s: SessionDep,
    settings: SettingsDep,
    db: DatabaseDep,
    clock: ClockDep,
) -> dict[str, Any]:
    svc = _service(settings, db, clock)
    await svc.update(s, ctx, lease_id, body)
    await s.flush()
    wake_after_commit(s)
    return await _one(svc, s, lease_id)


@router.delete("/leases/{lease_id}", status_code=204, summary="Delete a lease and its servers")
async def delete_lease(
    lease_id: str,
    ctx: WriterDep,
    s: SessionDep,
    settings: SettingsDep,
    db: DatabaseDep,
    clock: ClockDep,
) -> Response:
    await _service(settings, db, clock).delete(s, ctx, lease_id)
    wake_after_commit(s)
    return Response(status_code=204)
