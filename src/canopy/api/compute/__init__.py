"""Nova v2.1 subset at /compute/v2.1: each resource in its own module, assembled here."""

from __future__ import annotations

from canopy.api.compute import (
    availability_zones,
    flavor_manage,
    flavors,
    instance_actions,
    keypairs,
    limits,
    quotas,
    server_groups,
    servers,
    versions,
)
from canopy.api.service_routes import ServiceRouter

PREFIX = "/compute/v2.1"


def compute_router() -> ServiceRouter:
    router = ServiceRouter("/compute")
    router.include_router(versions.router)  # /compute and /compute/v2.1 version documents
    for module in (
        servers,
        flavors,
        flavor_manage,
        availability_zones,
        instance_actions,
        keypairs,
        server_groups,
        quotas,
        limits,
    ):
        router.include_router(module.router, prefix=PREFIX, tags=["compute"])
    return router
