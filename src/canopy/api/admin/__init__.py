"""Canopy's own API at /canopy/v1: clouds, spend, placements, mappings, servers (cloud
admins), and the free-slot search for leases (any project's members and readers)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from canopy.api.admin import (
    cloud_edits,
    clouds,
    flavors,
    images,
    lease_slots,
    placements,
    servers,
    spend,
)
from canopy.api.auth import require_cloud_admin

PREFIX = "/canopy/v1"


def admin_router() -> APIRouter:
    """The admin API; every route but the free-slot search requires a cloud admin (see
    auth.require_cloud_admin); that one takes any project's token, as leases do."""
    # Body size: [api] max_body_bytes, enforced for every route by api/request_guard.py.
    router = APIRouter(prefix=PREFIX)
    admin = APIRouter(dependencies=[Depends(require_cloud_admin)])
    for module in (clouds, cloud_edits, spend, placements, flavors, images, servers):
        admin.include_router(module.router)
    router.include_router(admin)
    router.include_router(lease_slots.router)
    return router
