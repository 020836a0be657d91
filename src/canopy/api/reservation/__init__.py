"""Blazar v1 subset at /reservation/v1: version documents, plugins, leases and os-hosts.

The catalog's `reservation` endpoint is /reservation/v1 (no project in the path);
python-blazarclient appends /leases to it. Errors use Blazar's two bodies (faults.py).
"""

from __future__ import annotations

from fastapi import FastAPI

from canopy.api.errors import add_fault_format
from canopy.api.reservation import hosts, leases, versions
from canopy.api.reservation.faults import blazar_api_fault, blazar_fault
from canopy.api.service_routes import ServiceRouter

PREFIX = "/reservation"


def install_reservation(app: FastAPI) -> None:
    """Blazar's bodies for every error under /reservation: Flask's for the framework's,
    render_error_message's for those of a route's work."""
    add_fault_format(app, PREFIX, blazar_fault, raised=blazar_api_fault)


def reservation_router() -> ServiceRouter:
    router = ServiceRouter("/reservation", tags=["reservation"])
    router.include_router(versions.router, prefix=PREFIX)
    router.include_router(leases.router, prefix=f"{PREFIX}/v1")
    router.include_router(hosts.router, prefix=f"{PREFIX}/v1")
    return router


__all__ = [
    "PREFIX",
    "blazar_api_fault",
    "blazar_fault",
    "install_reservation",
    "reservation_router",
]
