"""Nova: a cloud admin's flavor management. Create, describe (2.55) and delete flavors,
set their extra specs, and share private flavors with projects (os-flavor-access).

Only a cloud admin (the admin role on the admin project) may; anyone else gets Nova's 403
naming the policy. Reading flavors, their extra specs included, is api/compute/flavors.py.
A new flavor is mapped to each cloud's sizes by that cloud's next inventory, which the
create asks for (services/flavors.py): until then a server of that flavor waits in
placement rather than fail. Deleting a flavor servers were booted with keeps it for them,
hidden, as Nova's servers keep their flavor.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response

from canopy.api.auth import AuthDep
from canopy.api.compute import flavor_input as parse
from canopy.api.compute.common import could_be_flavor_id, reject_nul_body
from canopy.api.compute.microversion import VersionDep
from canopy.api.compute.views import flavor_detail
from canopy.api.deps import (
    ClockDep,
    ReadSessionDep,
    SessionDep,
    SettingsDep,
    wake_after_commit,
)
from canopy.domain.context import RequestContext
from canopy.domain.errors import Forbidden, InvalidRequest, NotFound
from canopy.services import flavors as service

router = APIRouter()

JsonBody = Annotated[Any, Body()]


def _admin(ctx: RequestContext, policy: str) -> None:
    if not ctx.is_cloud_admin:
        raise Forbidden(f"Policy doesn't allow os_compute_api:{policy} to be performed.")


def _id(flavor_id: str) -> str:
    if not could_be_flavor_id(flavor_id):
        raise service.not_found(flavor_id)
    return flavor_id


@router.post("/flavors", summary="Create a flavor (cloud admin)")
async def create_flavor(
    body: JsonBody,
    request: Request,
    v: VersionDep,
    ctx: AuthDep,
    s: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    _admin(ctx, "os-flavor-manage:create")
    reject_nul_body(body)
    new = parse.new_flavor(body, v)
    flavor = await service.create(s, clock, new)
    wake_after_commit(s, "inventory")
    return {"flavor": flavor_detail(request, settings, v, flavor)}


@router.put("/flavors/{flavor_id}", summary="Change a flavor's description (2.55, cloud admin)")
async def update_flavor(
    flavor_id: str,
    body: JsonBody,
    request: Request,
    v: VersionDep,
    ctx: AuthDep,
    s: SessionDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    if not v.at_least(55):
        raise NotFound("The resource could not be found.")
    _admin(ctx, "os-flavor-manage:update")
    reject_nul_body(body)
    text = parse.new_description(body)
    flavor = await service.set_description(s, _id(flavor_id), text)
    return {"flavor": flavor_detail(request, settings, v, flavor)}


@router.delete("/flavors/{flavor_id}", status_code=202, summary="Delete a flavor (cloud admin)")
async def delete_flavor(
    flavor_id: str, _v: VersionDep, ctx: AuthDep, s: SessionDep, clock: ClockDep
) -> Response:
    _admin(ctx, "os-flavor-manage:delete")
    await service.remove(s, clock, _id(flavor_id))
    return Response(status_code=202)


@router.post("/flavors/{flavor_id}/os-extra_specs", summary="Add or replace extra specs")
async def create_extra_specs(
    flavor_id: str, body: JsonBody, _v: VersionDep, ctx: AuthDep, s: SessionDep
) -> dict[str, Any]:
    _admin(ctx, "os-flavor-extra-specs:create")
    reject_nul_body(body)
    specs = parse.extra_specs(parse.one_object(body, "extra_specs"))
    await service.merge_specs(s, _id(flavor_id), specs)
    return {"extra_specs": body["extra_specs"]}


@router.put("/flavors/{flavor_id}/os-extra_specs/{key}", summary="Set one extra spec")
async def update_extra_spec(
    flavor_id: str, key: str, body: JsonBody, _v: VersionDep, ctx: AuthDep, s: SessionDep
) -> dict[str, Any]:
    _admin(ctx, "os-flavor-extra-specs:update")
    reject_nul_body(body)
    if not isinstance(body, dict) or len(body) != 1:
        count = "does not have enough properties" if not body else "has too many properties"
        raise InvalidRequest(f"{body!r} {count}")
    specs = parse.extra_specs(body, key)
    if key not in specs:
        raise InvalidRequest("Request body and URI mismatch")
    await service.merge_specs(s, _id(flavor_id), specs)
    return dict(body)


@router.delete("/flavors/{flavor_id}/os-extra_specs/{key}", summary="Delete one extra spec")
async def delete_extra_spec(
    flavor_id: str, key: str, _v: VersionDep, ctx: AuthDep, s: SessionDep
) -> Response:
    _admin(ctx, "os-flavor-extra-specs:delete")
    await service.drop_spec(s, _id(flavor_id), key)
    return Response(status_code=200)


def _access(flavor_id: str, projects: list[str]) -> dict[str, Any]:
    return {"flavor_access": [{"flavor_id": flavor_id, "tenant_id": p} for p in projects]}


@router.get("/flavors/{flavor_id}/os-flavor-access", summary="Who may use a private flavor")
async def list_flavor_access(
    flavor_id: str, _v: VersionDep, ctx: AuthDep, s: ReadSessionDep
) -> dict[str, Any]:
    _admin(ctx, "os-flavor-access")
    flavor = await service.visible(s, _id(flavor_id), ctx)
    if flavor.is_public:
        raise NotFound("Access list not available for public flavors.")
    return _access(flavor.id, await service.access_list(s, flavor.id))


_ACTIONS = ("addTenantAccess", "removeTenantAccess")


@router.post("/flavors/{flavor_id}/action", summary="Share a private flavor, or stop sharing it")
async def flavor_action(
    flavor_id: str, body: JsonBody, v: VersionDep, ctx: AuthDep, s: SessionDep
) -> dict[str, Any]:
    if isinstance(body, dict) and len(body) > 1:  # Nova: one action per request
        raise InvalidRequest("Malformed message body: too many body keys")
    action = next(iter(body), None) if isinstance(body, dict) else None
    if action not in _ACTIONS:
        raise InvalidRequest(f"There is no such action: {action}")
    policy = "add_tenant_access" if action == "addTenantAccess" else "remove_tenant_access"
    _admin(ctx, f"os-flavor-access:{policy}")
    reject_nul_body(body)
    project = parse.tenant(body, action)
    fid = _id(flavor_id)
    if action == "addTenantAccess":
        await service.add_access(s, fid, project, refuse_public=v.at_least(7))
    else:
        await service.remove_access(s, fid, project)
    return _access(fid, await service.access_list(s, fid))
