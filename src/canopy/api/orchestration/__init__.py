"""Heat v1 subset at /orchestration/v1/{project_id}: stacks, their resources, events and
outputs, validation, resource types and template versions. Errors use Heat's body."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from canopy.api.errors import add_fault_format
from canopy.api.orchestration import info, resources, stacks
from canopy.api.orchestration.common import PREFIX
from canopy.api.orchestration.faults import heat_fault

ROOT = "/orchestration"


def install_orchestration(app: FastAPI) -> None:
    """Heat's fault body for everything under /orchestration."""
    add_fault_format(app, ROOT, heat_fault)


def orchestration_router() -> APIRouter:
    router = APIRouter(tags=["orchestration"])
    router.include_router(info.router, prefix=PREFIX)
    router.include_router(stacks.router, prefix=PREFIX)
    router.include_router(resources.router, prefix=PREFIX)
    return router


__all__ = ["heat_fault", "install_orchestration", "orchestration_router"]
