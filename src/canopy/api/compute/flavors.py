"""Nova: reading flavors. Canopy-wide sizes from the configuration (ids "1".."5" by
default), those a cloud admin made through the API (api/compute/flavor_manage.py) and
reservations' private flavors.

A project sees the public flavors and the private ones shared with it (Nova's flavor
access); a cloud admin sees every flavor, and lists the private ones with `is_public`.
`GET /flavors/{id}` finds a flavor by id only: OSC asks for `--flavor m1.tiny` by name
first, needs a clean 404, and then lists to match the name.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.api.auth import AuthDep
from canopy.api.compute.common import (
    bool_from_string,
    could_be_flavor_id,
    last,
    limit_and_marker,
    page_links,
    reject_nul_query,
    reject_unknown,
)
from canopy.api.compute.microversion import APIVersion, VersionDep
from canopy.api.compute.views import flavor_basic, flavor_detail
from canopy.api.deps import ReadSessionDep, SettingsDep
from canopy.domain.context import RequestContext
from canopy.domain.errors import InvalidRequest, NotFound
from canopy.services import flavors as service
from canopy.store.models import Flavor

router = APIRouter()

_PARAMS = frozenset({"limit", "marker", "is_public", "minRam", "minDisk", "sort_key", "sort_dir"})

# Nova's flavor sort keys -> columns (None: no column in canopy, orders nothing).
_SORT: dict[str, Any] = {
    "flavorid": Flavor.id,
    "id": Flavor.id,
    "name": Flavor.name,
    "memory_mb": Flavor.ram_mb,
    "root_gb": Flavor.disk_gb,
    "vcpus": Flavor.vcpus,
    "created_at": Flavor.created_at,
    "is_public": Flavor.is_public,
    "description": None,
    "disabled": None,
    "ephemeral_gb": None,
    "rxtx_factor": None,
    "swap": None,
    "updated_at": None,
    "vcpu_weight": None,
}


def _int_filter(request: Request, name: str) -> int | None:
    raw = last(request, name)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise InvalidRequest(f"Invalid {name} filter [{raw}]") from None


async def _flavors(
    request: Request, v: APIVersion, ctx: RequestContext, s: AsyncSession
) -> tuple[list[Flavor], int]:
    reject_nul_query(request)
    if v.at_least(75):
        reject_unknown(request, _PARAMS)
    q = select(Flavor).where(service.live())
    # Nova: `is_public` True (the default, and the only choice of a non-admin) lists the
    # public flavors and the private ones shared with the caller's project.
    public: bool | None = True
    if ctx.is_cloud_admin:
        raw = last(request, "is_public")
        if raw is not None and raw.strip().lower() == "none":
            public = None
        elif raw is not None:
            try:
                public = bool_from_string(raw, strict=True)
            except InvalidRequest:
                raise InvalidRequest(f"Invalid is_public filter [{raw}]") from None
    if public is True:
        q = q.where(service.public_or_shared(ctx.project_id))
    elif public is False:
        q = q.where(Flavor.is_public.is_(False))
    min_ram = _int_filter(request, "minRam")
    if min_ram is not None:
        q = q.where(Flavor.ram_mb >= min_ram)
    min_disk = _int_filter(request, "minDisk")
    if min_disk is not None:
        q = q.where(Flavor.disk_gb >= min_disk)

    key = last(request, "sort_key") or "flavorid"
    direction = last(request, "sort_dir") or "asc"
    if key not in _SORT:
        raise InvalidRequest(
            f"Invalid input for query parameters sort_key. Value: {key}. "
            f"'{key}' is not one of {sorted(_SORT)}"
        )
    if direction not in ("asc", "desc"):
        raise InvalidRequest(
            f"Invalid input for query parameters sort_dir. Value: {direction}. "
            f"'{direction}' is not one of ['asc', 'desc']"
        )
    desc = direction == "desc"
    cols = [c for c in (_SORT[key], Flavor.id) if c is not None]
    if len(cols) == 2 and cols[0] is cols[1]:
        cols = cols[:1]
    limit, marker = limit_and_marker(request)
    if limit == 0:
        return [], 0
    if marker is not None:
        row = None
        if could_be_flavor_id(marker):
            # Nova's marker query: live, and for a project public or shared with it.
            mq = select(*cols).where(Flavor.id == marker, service.live())
            if not ctx.is_cloud_admin:
                mq = mq.where(service.public_or_shared(ctx.project_id))
            row = (await s.execute(mq)).one_or_none()
        if row is None:
            raise InvalidRequest(f"marker [{marker}] not found")
        ors = []
        for i, col in enumerate(cols):
            equal = [cols[j] == row[j] for j in range(i)]
            ors.append(and_(*equal, col < row[i] if desc else col > row[i]))
        q = q.where(or_(*ors))
    q = q.order_by(*(c.desc() if desc else c.asc() for c in cols)).limit(limit)
    return list((await s.execute(q)).scalars()), limit


async def _list(
    request: Request,
    v: APIVersion,
    ctx: RequestContext,
    s: AsyncSession,
    settings: SettingsDep,
    *,
    detail: bool,
) -> dict[str, Any]:
    flavors, limit = await _flavors(request, v, ctx, s)
    view = flavor_detail if detail else flavor_basic
    out: dict[str, Any] = {"flavors": [view(request, settings, v, f) for f in flavors]}
    path = "flavors/detail" if detail else "flavors"
    nxt = page_links(request, settings, path, flavors, limit, lambda f: f.id)
    if nxt:
        out["flavors_links"] = nxt
    return out


@router.get("/flavors", summary="List flavors (id, name, links)")
async def list_flavors(
    request: Request, v: VersionDep, ctx: AuthDep, s: ReadSessionDep, settings: SettingsDep
) -> dict[str, Any]:
    return await _list(request, v, ctx, s, settings, detail=False)


@router.get("/flavors/detail", summary="List flavors with details")
async def list_flavors_detail(
    request: Request, v: VersionDep, ctx: AuthDep, s: ReadSessionDep, settings: SettingsDep
) -> dict[str, Any]:
    return await _list(request, v, ctx, s, settings, detail=True)


async def _get(s: AsyncSession, flavor_id: str, ctx: RequestContext) -> Flavor:
    """A flavor the caller may see: a public one, one shared with the caller's project,
    or a reservation's flavor, which only its lease's project sees, only while the lease
    is active (a cloud admin sees all)."""
    if not could_be_flavor_id(flavor_id):
        raise service.not_found(flavor_id)
    return await service.visible(s, flavor_id, ctx)


@router.get("/flavors/{flavor_id}", summary="Show a flavor (by id only)")
async def show_flavor(
    flavor_id: str,
    request: Request,
    v: VersionDep,
    ctx: AuthDep,
    s: ReadSessionDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    return {"flavor": flavor_detail(request, settings, v, await _get(s, flavor_id, ctx))}


@router.get("/flavors/{flavor_id}/os-extra_specs", summary="A flavor's extra specs")
async def flavor_extra_specs(
    flavor_id: str, _v: VersionDep, ctx: AuthDep, s: ReadSessionDep
) -> dict[str, Any]:
    return {"extra_specs": service.specs_of(await _get(s, flavor_id, ctx))}


@router.get("/flavors/{flavor_id}/os-extra_specs/{key}", summary="One extra spec")
async def flavor_extra_spec(
    flavor_id: str, key: str, _v: VersionDep, ctx: AuthDep, s: ReadSessionDep
) -> dict[str, Any]:
    specs = service.specs_of(await _get(s, flavor_id, ctx))
    if key not in specs:
        raise NotFound(f"Flavor {flavor_id} has no extra specs with key {key}.")
    return {key: specs[key]}
