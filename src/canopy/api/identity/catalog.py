"""The service catalog every token carries: identity, compute, image, reservation and
orchestration on this one port, each with public, internal and admin endpoints in the
configured region."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from canopy.api.auth import HolderDep, identity_rule
from canopy.api.deps import SettingsDep
from canopy.api.identity.common import V3, collection_links, self_link
from canopy.config import Settings
from canopy.domain.errors import NotFound

router = APIRouter(tags=["identity"])

# (type, name, path under the public URL). The ids below are derived from these, so every
# canopy with the same public URL shows the same catalog ids.
SERVICES = (
    ("identity", "keystone", "/identity"),
    ("compute", "nova", "/compute/v2.1"),
    ("image", "glance", "/image"),
    ("reservation", "blazar", "/reservation/v1"),
    # Heat's endpoint names the project: Keystone fills in the token's project.
    ("orchestration", "heat", "/orchestration/v1/%(tenant_id)s"),
)
INTERFACES = ("public", "internal", "admin")


def _id(*parts: str) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, "canopy:catalog:" + ":".join(parts)).hex


def build_catalog(
    settings: Settings, project_id: str | None = None, *, token: bool = False
) -> list[dict[str, Any]]:
    """The catalog; with `project_id`, as a token scoped to that project carries it (the
    endpoint templates filled in), else as the endpoint list shows the templates. A
    token's catalog with no project leaves out what needs one (as Keystone does)."""
    base = settings.public_url
    region = settings.identity.region
    return [
        {
            "type": kind,
            "name": name,
            "id": _id(kind),
            "endpoints": [
                {
                    "id": _id(kind, iface, base),
                    "interface": iface,
                    "region_id": region,
                    "region": region,
                    "url": base + (path % {"tenant_id": project_id} if project_id else path),
                }
                for iface in INTERFACES
            ],
        }
        for kind, name, path in SERVICES
        if not (token and project_id is None and "%(" in path)
    ]


@router.get(V3 + "/auth/catalog")
async def auth_catalog(
    request: Request, holder: HolderDep, settings: SettingsDep
) -> dict[str, Any]:
    """The catalog for the caller's token."""
    catalog = build_catalog(settings, holder.project_id, token=True)
    return {"catalog": catalog, "links": collection_links(request)}


# The catalog as Keystone's read-only admin resources (`openstack service/endpoint/region
# list`). It is derived from the settings, so it cannot be edited through the API.


def _services(request: Request, settings: Settings) -> list[dict[str, Any]]:
    return [
        {
            "id": entry["id"],
            "type": entry["type"],
            "name": entry["name"],
            "enabled": True,
            "description": f"canopy {entry['type']}",
            "links": self_link(request, f"/services/{entry['id']}"),
        }
        for entry in build_catalog(settings)
    ]


def _endpoints(request: Request, settings: Settings) -> list[dict[str, Any]]:
    return [
        {
            **ep,
            "service_id": entry["id"],
            "enabled": True,
            "links": self_link(request, f"/endpoints/{ep['id']}"),
        }
        for entry in build_catalog(settings)
        for ep in entry["endpoints"]
    ]


def _one(items: list[dict[str, Any]], item_id: str, kind: str) -> dict[str, Any]:
    for item in items:
        if item["id"] == item_id:
            return item
    raise NotFound(f"Could not find {kind}: {item_id[:64]}.")


@router.get(V3 + "/services", dependencies=[Depends(identity_rule("list_services"))])
async def list_services(
    request: Request,
    settings: SettingsDep,
    service_type: Annotated[str | None, Query(alias="type")] = None,
    name: str | None = None,
) -> dict[str, Any]:
    items = [
        s
        for s in _services(request, settings)
        if service_type in (None, s["type"]) and name in (None, s["name"])
    ]
    return {"services": items, "links": collection_links(request)}


@router.get(V3 + "/services/{service_id}", dependencies=[Depends(identity_rule("get_service"))])
async def show_service(request: Request, service_id: str, settings: SettingsDep) -> dict[str, Any]:
    return {"service": _one(_services(request, settings), service_id, "service")}


@router.get(V3 + "/endpoints", dependencies=[Depends(identity_rule("list_endpoints"))])
async def list_endpoints(
    request: Request,
    settings: SettingsDep,
    service_id: str | None = None,
    interface: str | None = None,
    region_id: str | None = None,
) -> dict[str, Any]:
    items = [
        e
        for e in _endpoints(request, settings)
        if service_id in (None, e["service_id"])
        and interface in (None, e["interface"])
        and region_id in (None, e["region_id"])
    ]
    return {"endpoints": items, "links": collection_links(request)}


@router.get(V3 + "/endpoints/{endpoint_id}", dependencies=[Depends(identity_rule("get_endpoint"))])
async def show_endpoint(
    request: Request, endpoint_id: str, settings: SettingsDep
) -> dict[str, Any]:
    return {"endpoint": _one(_endpoints(request, settings), endpoint_id, "endpoint")}


def _region(request: Request, settings: Settings) -> dict[str, Any]:
    rid = settings.identity.region
    return {
        "id": rid,
        "description": "",
        "parent_region_id": None,
        "links": self_link(request, f"/regions/{rid}"),
    }


@router.get(V3 + "/regions")
async def list_regions(
    request: Request, holder: HolderDep, settings: SettingsDep
) -> dict[str, Any]:
    return {"regions": [_region(request, settings)], "links": collection_links(request)}


@router.get(V3 + "/regions/{region_id}")
async def show_region(
    request: Request, region_id: str, holder: HolderDep, settings: SettingsDep
) -> dict[str, Any]:
    return {"region": _one([_region(request, settings)], region_id, "region")}
