"""Nova: os-quota-sets. A project's limits, with usage in the detailed view.

Anyone in a project may read its quotas (another project's: 403, unless admin); only admins
change them. Microversions: 2.36 drops the nova-network quotas (fixed_ips, floating_ips,
security_groups, security_group_rules) and 2.57 the file-injection ones from every body;
2.75 refuses unknown query parameters.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response

from canopy.api.auth import AuthDep, CloudAdminDep
from canopy.api.compute.microversion import APIVersion, VersionDep
from canopy.api.compute.params import first, query, reject_unknown
from canopy.api.deps import ReadSessionDep, SessionDep, SettingsDep
from canopy.domain.context import RequestContext
from canopy.domain.errors import Forbidden, InvalidRequest
from canopy.services import quotas as service

router = APIRouter()

JsonBody = Annotated[dict[str, Any], Body()]
_TRUE = frozenset({"1", "t", "true", "on", "y", "yes"})
_FALSE = frozenset({"0", "f", "false", "off", "n", "no"})


def _policy(action: str) -> Forbidden:
    return Forbidden(f"Policy doesn't allow os_compute_api:os-quota-sets:{action} to be performed.")


def _may_read(ctx: RequestContext, project_id: str, action: str) -> None:
    if not (ctx.is_cloud_admin or project_id == ctx.project_id):
        raise _policy(action)


def shown(v: APIVersion) -> list[str]:
    """The quota names shown at microversion `v`, in Nova's order."""
    hidden = service.hidden_at(v.minor if v.major == 2 else 0)
    return [r for r in service.RESOURCES if r not in hidden]


def _user_for_usage(ctx: RequestContext, project_id: str, requested: str | None) -> str:
    """Whose keypairs count as `key_pairs` in use: the named user, else the caller's own
    (only in their own project)."""
    if requested:
        return requested
    return ctx.user_id if project_id == ctx.project_id else ""


def _check_user_param(params: dict[str, list[str]]) -> None:
    if first(params, "user_id"):
        raise InvalidRequest(
            "Canopy keeps quotas per project; per-user quotas (user_id) cannot be changed."
        )


@router.get("/os-quota-sets/{project_id}", summary="A project's quota limits")
async def show_quotas(
    project_id: str,
    request: Request,
    ctx: AuthDep,
    v: VersionDep,
    s: ReadSessionDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    reject_unknown(query(request), {"user_id"}, v)
    _may_read(ctx, project_id, "show")
    await service.verify_project(s, project_id)
    limits = await service.limits(s, settings, project_id)
    return {"quota_set": {"id": project_id, **{k: limits[k] for k in shown(v)}}}


@router.get("/os-quota-sets/{project_id}/detail", summary="Quota limits with usage")
async def show_quota_detail(
    project_id: str,
    request: Request,
    ctx: AuthDep,
    v: VersionDep,
    s: ReadSessionDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    params = query(request)
    reject_unknown(params, {"user_id"}, v)
    _may_read(ctx, project_id, "detail")
    await service.verify_project(s, project_id)
    user_id = _user_for_usage(ctx, project_id, first(params, "user_id"))
    detail = await service.detail(s, settings, project_id, user_id)
    body: dict[str, Any] = {"id": project_id}
    for k in shown(v):
        d = detail[k]
        body[k] = {"limit": d.limit, "in_use": d.in_use, "reserved": d.reserved}
    return {"quota_set": body}


@router.get("/os-quota-sets/{project_id}/defaults", summary="The default quota limits")
async def show_quota_defaults(
    project_id: str, ctx: AuthDep, v: VersionDep, s: ReadSessionDep, settings: SettingsDep
) -> dict[str, Any]:
    await service.verify_project(s, project_id)
    defaults = service.defaults(settings)
    return {"quota_set": {"id": project_id, **{k: defaults[k] for k in shown(v)}}}


def _force(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise InvalidRequest(
        f"Invalid input for field/attribute force. Value: {value}. {value!r} is not a boolean"
    )


@router.put("/os-quota-sets/{project_id}", summary="Change a project's limits (admin)")
async def update_quotas(
    project_id: str,
    body: JsonBody,
    request: Request,
    ctx: CloudAdminDep,
    v: VersionDep,
    s: SessionDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    params = query(request)
    reject_unknown(params, {"user_id"}, v)
    _check_user_param(params)
    await service.verify_project(s, project_id)
    if set(body) != {"quota_set"} or not isinstance(body["quota_set"], dict):
        raise InvalidRequest(
            "Invalid input for field/attribute quota_set. The body must be "
            '{"quota_set": {...}} and nothing else.'
        )
    names = shown(v)
    requested: dict[str, Any] = body["quota_set"]
    unknown = sorted(set(requested) - {*names, "force"})
    if unknown:
        verb = "was" if len(unknown) == 1 else "were"
        raise InvalidRequest(
            "Invalid input for field/attribute quota_set. Additional properties are not "
            f"allowed ({', '.join(map(repr, unknown))} {verb} unexpected)"
        )
    force = _force(requested["force"]) if "force" in requested else False
    values = {
        k: service.parse_limit(k, raw)
        for k, raw in requested.items()
        if k != "force" and raw is not None
    }
    await service.update(s, settings, project_id, ctx.user_id, values, force=force)
    limits = await service.limits(s, settings, project_id)
    return {"quota_set": {k: limits[k] for k in names}}


@router.delete(
    "/os-quota-sets/{project_id}",
    summary="Revert a project to the default limits (admin)",
    status_code=202,
    response_class=Response,
)
async def revert_quotas(
    project_id: str, request: Request, ctx: CloudAdminDep, v: VersionDep, s: SessionDep
) -> Response:
    params = query(request)
    reject_unknown(params, {"user_id"}, v)
    _check_user_param(params)
    await service.reset(s, project_id)
    return Response(status_code=202)
