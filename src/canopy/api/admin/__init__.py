"""Canopy's own admin API at /canopy/v1: clouds, spend, placements, mappings, servers."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from canopy.api.admin import clouds, flavors, images, placements, servers, spend
from canopy.api.auth import require_cloud_admin

PREFIX = "/canopy/v1"
MAX_BODY_BYTES = 1 << 20  # admin requests are small JSON documents


def admin_router() -> APIRouter:
    """The admin API; every route requires a cloud admin (see auth.require_cloud_admin)."""
    router = APIRouter(
        prefix=PREFIX, dependencies=[Depends(require_cloud_admin)], max_body_size=MAX_BODY_BYTES
    )
    for module in (clouds, spend, placements, flavors, images, servers):
        router.include_router(module.router)
    return router
