"""Blazar's version documents, served without a token (300 at the root, as Blazar does)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from canopy.api.deps import SettingsDep
from canopy.api.image.versions import base_url
from canopy.config import Settings

router = APIRouter()


def version_list(request: Request, settings: Settings) -> dict[str, Any]:
    href = f"{base_url(request, settings)}/reservation/v1"
    return {
        "versions": [
            {
                "id": "v1.0",
                "status": "CURRENT",
                "links": [{"rel": "self", "href": href}],
                "min_version": "1.0",
                "max_version": "1.0",
            }
        ]
    }


@router.get("", include_in_schema=False)
@router.get("/", summary="Blazar API versions (300 Multiple Choices)")
async def versions_root(request: Request, settings: SettingsDep) -> JSONResponse:
    return JSONResponse(version_list(request, settings), status_code=300)


@router.get("/versions", summary="Blazar API versions (300 Multiple Choices)")
async def versions(request: Request, settings: SettingsDep) -> JSONResponse:
    return JSONResponse(version_list(request, settings), status_code=300)
