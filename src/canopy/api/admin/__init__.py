"""Canopy's own admin API at /canopy/v1: clouds, spend, placements, mappings, servers."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from canopy.api.admin import cloud_edits, clouds, flavors, images, placements, servers, spend
from canopy.api.auth import require_cloud_admin

PREFIX = "/canopy/v1"


def admin_router() -> APIRouter:
    """The admin API; every route requires a cloud admin (see auth.require_cloud_admin)."""
    # Body size: [api] max_body_bytes, enforced for every route by api/request_guard.py.
    router = APIRouter(prefix=PREFIX, dependencies=[Depends(require_cloud_admin)])
    for module in (clouds, cloud_edits, spend, placements, flavors, images, servers):
        router.include_router(module.router)
    return router
