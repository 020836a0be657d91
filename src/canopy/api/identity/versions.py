"""Keystone's version documents, answered without a token at /identity and /identity/v3,
with and without a trailing slash (keystoneauth asks for all four)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from canopy.api.deps import SettingsDep
from canopy.api.identity.common import PREFIX, V3

router = APIRouter(tags=["identity"])

VERSION = "v3.14"
UPDATED = "2020-04-07T00:00:00Z"  # Keystone's date for v3.14


def version_entry(public_url: str) -> dict[str, Any]:
    return {
        "id": VERSION,
        "status": "stable",
        "updated": UPDATED,
        "links": [{"rel": "self", "href": f"{public_url}{V3}/"}],
        "media-types": [
            {"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}
        ],
    }


@router.get(PREFIX, status_code=300)
@router.get(PREFIX + "/", status_code=300, include_in_schema=False)
async def versions(settings: SettingsDep) -> JSONResponse:
    """Every identity API version (only v3): 300 Multiple Choices, as Keystone answers."""
    body = {"versions": {"values": [version_entry(settings.public_url)]}}
    return JSONResponse(body, status_code=300)


@router.get(V3)
@router.get(V3 + "/", include_in_schema=False)
async def version_v3(settings: SettingsDep) -> dict[str, Any]:
    """The v3 version document."""
    return {"version": version_entry(settings.public_url)}
