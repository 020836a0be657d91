"""Nova: the version documents at /compute and /compute/v2.1 (no token needed).

keystoneauth fetches them with and without a trailing slash before any other call, to learn
the microversion range; the `version` field is the maximum we honour.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from canopy.api.compute.common import COMPUTE, V21, base_url
from canopy.api.compute.microversion import MAX_VERSION, MIN_VERSION, fmt
from canopy.api.deps import SettingsDep

router = APIRouter(tags=["compute"])

UPDATED = "2013-07-23T11:33:21Z"  # what Nova says for v2.1


def _v21(request: Request, settings: SettingsDep, *, full: bool) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": "v2.1",
        "status": "CURRENT",
        "version": fmt(MAX_VERSION),
        "min_version": fmt(MIN_VERSION),
        "updated": UPDATED,
        "links": [{"rel": "self", "href": f"{base_url(request, settings)}{V21}/"}],
    }
    if full:
        doc["links"].append(
            {"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"}
        )
        doc["media-types"] = [
            {
                "base": "application/json",
                "type": "application/vnd.openstack.compute+json;version=2.1",
            }
        ]
    return doc


@router.get(COMPUTE, include_in_schema=False)
@router.get(COMPUTE + "/", summary="Compute API versions")
async def versions(request: Request, settings: SettingsDep) -> dict[str, Any]:
    return {"versions": [_v21(request, settings, full=False)]}


@router.get(V21, include_in_schema=False)
@router.get(V21 + "/", summary="The compute v2.1 version document")
async def version(request: Request, settings: SettingsDep) -> dict[str, Any]:
    return {"version": _v21(request, settings, full=True)}
