"""Heat v1 subset at /orchestration/v1/{project_id}: stacks, their resources, events and
outputs, validation, resource types and template versions. Errors use Heat's body."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from canopy.api.errors import add_fault_format, fault_response
from canopy.api.orchestration import (
    actions,
    info,
    resources,
    signals,
    software_configs,
    software_deployments,
    stacks,
    type_template,
)
from canopy.api.orchestration.common import PREFIX
from canopy.api.orchestration.faults import heat_fault
from canopy.api.service_routes import ServiceRouter
from canopy.orchestration.template import TemplateError

ROOT = "/orchestration"


def install_orchestration(app: FastAPI) -> None:
    """Heat's fault body for everything under /orchestration; a template error (the
    user's) is a 400 with its message, which names where in the template it is."""
    add_fault_format(app, ROOT, heat_fault)
    app.add_exception_handler(TemplateError, _on_template_error)


async def _on_template_error(request: Request, exc: Exception) -> JSONResponse:
    return fault_response(request, 400, str(exc) or "Invalid template.")


def orchestration_router() -> ServiceRouter:
    router = ServiceRouter("/orchestration", tags=["orchestration"])
    router.include_router(info.router, prefix=PREFIX)
    router.include_router(type_template.router, prefix=PREFIX)
    router.include_router(stacks.router, prefix=PREFIX)
    router.include_router(resources.router, prefix=PREFIX)
    router.include_router(actions.router, prefix=PREFIX)
    router.include_router(signals.router, prefix=PREFIX)
    router.include_router(software_configs.router, prefix=PREFIX)
    router.include_router(software_deployments.router, prefix=PREFIX)
    return router


__all__ = ["heat_fault", "install_orchestration", "orchestration_router"]
