"""Glance v2 subset at /image: version documents, images (read-only) and their schemas.

Images are canopy-wide and registered by operators (`canopy image create`, or the admin API
`POST /canopy/v1/images`); this API shows them to OpenStack clients, which look images up
here by name or id before they boot a server.
"""

from __future__ import annotations

from fastapi import FastAPI

from canopy.api.errors import add_fault_format
from canopy.api.image import images, schemas, versions
from canopy.api.image.faults import glance_fault
from canopy.api.service_routes import ServiceRouter

PREFIX = "/image"


def install_image(app: FastAPI) -> None:
    """Glance's fault body for everything under /image."""
    add_fault_format(app, PREFIX, glance_fault)


def image_router() -> ServiceRouter:
    router = ServiceRouter("/image", tags=["image"])
    router.include_router(versions.router, prefix=PREFIX)
    router.include_router(schemas.router, prefix=f"{PREFIX}/v2")
    router.include_router(images.router, prefix=f"{PREFIX}/v2")
    return router


__all__ = ["PREFIX", "glance_fault", "image_router", "install_image"]
