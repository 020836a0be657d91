"""Blazar v1 subset at /reservation/v1: version documents, plugins, leases and os-hosts.

The catalog's `reservation` endpoint is /reservation/v1 (no project in the path);
python-blazarclient appends /leases to it. Errors use Blazar's body.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from canopy.api.errors import add_fault_format
from canopy.api.reservation import hosts, leases, versions
from canopy.api.reservation.faults import blazar_fault, on_manager_error
from canopy.reservations.host_occupants import HostHavingServers

PREFIX = "/reservation"


def install_reservation(app: FastAPI) -> None:
    """Blazar's fault body for everything under /reservation, and its manager-error body
    for the manager errors Canopy reproduces (only raised by /reservation routes)."""
    add_fault_format(app, PREFIX, blazar_fault)
    app.add_exception_handler(HostHavingServers, on_manager_error)


def reservation_router() -> APIRouter:
    router = APIRouter(tags=["reservation"])
    router.include_router(versions.router, prefix=PREFIX)
    router.include_router(leases.router, prefix=f"{PREFIX}/v1")
    router.include_router(hosts.router, prefix=f"{PREFIX}/v1")
    return router


__all__ = ["PREFIX", "blazar_fault", "install_reservation", "reservation_router"]
