"""What the service knows without a stack: validation, resource types, template versions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from canopy.api.deps import ReadSessionDep
from canopy.api.orchestration.common import ScopeDep, ServiceDep
from canopy.domain.errors import NotFound
from canopy.orchestration.resources.registry import TYPES
from canopy.orchestration.service import parse_request
from canopy.orchestration.template import (
    StackIdentity,
    TemplateError,
    template_functions,
    template_versions,
)

router = APIRouter()


@router.post("/validate", summary="Validate a template (and its parameters)")
async def validate_template(
    body: Annotated[Any, Body()], ctx: ScopeDep, s: ReadSessionDep, svc: ServiceDep
) -> dict[str, Any]:
    req = parse_request(body, template_required=True)
    identity = StackIdentity("validate", "None", ctx.project_id, svc.settings.identity.region)
    bound = await svc.validate(s, ctx, req, identity)
    template = bound.template
    params: dict[str, Any] = {}
    for p in template.parameter_infos():
        entry: dict[str, Any] = {
            "Type": p.type,
            "Description": p.description,
            "Label": p.label or p.name,
            "NoEcho": "true" if p.hidden else "false",
        }
        if p.default is not None:
            entry["Default"] = p.default
        if p.constraints:
            entry["Constraints"] = p.constraints
        params[p.name] = entry
    out: dict[str, Any] = {"Description": template.description, "Parameters": params}
    groups = template.parameter_groups()
    if groups:
        out["ParameterGroups"] = groups
    return out


@router.get("/resource_types", summary="The resource types canopy supports")
async def list_resource_types(ctx: ScopeDep, with_description: str = "false") -> dict[str, Any]:
    names = sorted(TYPES)
    if with_description.lower() in ("true", "1", "yes"):
        return {
            "resource_types": [
                {"resource_type": n, "description": TYPES[n].description} for n in names
            ]
        }
    return {"resource_types": names}


@router.get("/resource_types/{type_name}", summary="A resource type's properties and attributes")
async def show_resource_type(type_name: str, ctx: ScopeDep) -> dict[str, Any]:
    kind = TYPES.get(type_name)
    if kind is None:
        raise NotFound(
            f"The Resource Type ({type_name[:128]}) could not be found. Canopy supports: "
            + ", ".join(sorted(TYPES))
            + "."
        )
    return {
        "resource_type": kind.name,
        "description": kind.description,
        "properties": {n: p.schema() for n, p in kind.properties.items()},
        "attributes": {n: {"description": d} for n, d in kind.attributes.items()},
        "support_status": {"status": "SUPPORTED", "version": None, "message": None},
    }


@router.get("/template_versions", summary="The template versions canopy reads")
async def list_template_versions(ctx: ScopeDep) -> dict[str, Any]:
    return {"template_versions": template_versions()}


@router.get(
    "/template_versions/{template_version}/functions",
    summary="The functions a template version offers",
)
async def list_template_functions(template_version: str, ctx: ScopeDep) -> dict[str, Any]:
    try:
        found = template_functions(template_version)
    except TemplateError:
        raise NotFound(
            f"The template version ({template_version[:64]}) could not be found."
        ) from None
    return {"template_functions": found}
