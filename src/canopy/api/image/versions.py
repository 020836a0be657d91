"""Glance's version documents, served without a token (clients discover the API first).

`GET /image` answers 300 Multiple Choices with the list, as Glance does; keystoneauth
accepts it. The same list is served with 200 at /image/versions and /image/v2.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from canopy.api.deps import SettingsDep
from canopy.config import Settings

router = APIRouter()

CURRENT = (2, 7)  # os_hidden (2.7) and multihash fields (2.5) are in every image


def base_url(request: Request, settings: Settings) -> str:
    """Where clients reach canopy: the configured public URL, else this request's."""
    if settings.api.public_url:
        return settings.public_url
    return str(request.base_url).rstrip("/")


def version_list(request: Request, settings: Settings) -> dict[str, Any]:
    href = f"{base_url(request, settings)}/image/v2/"
    out = []
    for minor in range(CURRENT[1], -1, -1):
        out.append(
            {
                "id": f"v2.{minor}",
                "status": "CURRENT" if minor == CURRENT[1] else "SUPPORTED",
                "links": [{"rel": "self", "href": href}],
            }
        )
    return {"versions": out}


@router.get("", include_in_schema=False)
@router.get("/", summary="Glance API versions (300 Multiple Choices, as Glance answers)")
async def versions_root(request: Request, settings: SettingsDep) -> JSONResponse:
    return JSONResponse(version_list(request, settings), status_code=300)


@router.get("/versions", summary="Glance API versions")
@router.get("/v2", include_in_schema=False)
@router.get("/v2/", include_in_schema=False)
async def versions(request: Request, settings: SettingsDep) -> dict[str, Any]:
    return version_list(request, settings)
