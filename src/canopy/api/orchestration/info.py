"""What the service knows without a stack: validation, resource types, template versions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from canopy.api.deps import ReadSessionDep
from canopy.api.orchestration.common import ScopeDep, ServiceDep
from canopy.domain.errors import InvalidRequest, NotFound
from canopy.orchestration.resources.base import ResourceType
from canopy.orchestration.resources.registry import TYPES
from canopy.orchestration.service import parse_request
from canopy.orchestration.template import (
    StackIdentity,
    TemplateError,
    template_functions,
    template_versions,
)
from canopy.store.regexp import PatternError, compile_pattern

router = APIRouter()


@router.post("/validate", summary="Validate a template (and its parameters)")
async def validate_template(
    body: Annotated[Any, Body()], ctx: ScopeDep, s: ReadSessionDep, svc: ServiceDep
) -> dict[str, Any]:
    req = parse_request(body, template_required=True)
    identity = StackIdentity("validate", "None", ctx.project_id, svc.settings.identity.region)
    # As Heat's validate_template (strict_validate off): a parameter need not have a value.
    bound = await svc.validate(s, ctx, req, identity, strict=False)
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


# Heat's support statuses; canopy's types are all SUPPORTED (none is deprecated or hidden).
SUPPORT_STATUSES = ("UNKNOWN", "SUPPORTED", "DEPRECATED", "UNSUPPORTED", "HIDDEN")
MAX_NAME_PATTERN = 255


@router.get("/resource_types", summary="The resource types canopy supports")
async def list_resource_types(
    ctx: ScopeDep,
    with_description: str = "false",
    name: str | None = None,
    version: str | None = None,
    support_status: str | None = None,
) -> dict[str, Any]:
    """Heat's filters: `name` a regular expression matched at the start of the type's name
    (RE2, linear in the name: a hostile pattern cannot stall the process), `support_status`
    one of Heat's statuses, `version` the release a type appeared in (canopy records none,
    so a version matches no type)."""
    names = sorted(TYPES)
    if name is not None:
        if len(name) > MAX_NAME_PATTERN:
            raise InvalidRequest(f"name must be at most {MAX_NAME_PATTERN} characters.")
        try:
            program = compile_pattern(name)
        except PatternError as e:
            raise InvalidRequest(f"name is not a valid regular expression: {e}") from None
        names = [n for n in names if program.match(n) is not None]
    if support_status is not None:
        if support_status not in SUPPORT_STATUSES:
            raise InvalidRequest(
                f"Invalid support status and should be one of {SUPPORT_STATUSES!r}"
            )
        if support_status != "SUPPORTED":
            names = []
    if version is not None:
        names = []
    if with_description.lower() in ("true", "1", "yes"):
        return {
            "resource_types": [
                {"resource_type": n, "description": TYPES[n].description} for n in names
            ]
        }
    return {"resource_types": names}


def known_type(type_name: str) -> ResourceType:
    """The resource type called `type_name`; NotFound naming the supported ones if none."""
    kind = TYPES.get(type_name)
    if kind is None:
        raise NotFound(
            f"The Resource Type ({type_name[:128]}) could not be found. Canopy supports: "
            + ", ".join(sorted(TYPES))
            + "."
        )
    return kind


@router.get("/resource_types/{type_name}", summary="A resource type's properties and attributes")
async def show_resource_type(type_name: str, ctx: ScopeDep) -> dict[str, Any]:
    kind = known_type(type_name)
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
async def list_template_functions(
    template_version: str, ctx: ScopeDep, with_condition_func: str = "false"
) -> dict[str, Any]:
    with_condition = with_condition_func.lower() in ("true", "1", "yes", "on")
    try:
        found = template_functions(template_version, with_condition=with_condition)
    except TemplateError:
        raise NotFound(
            f"The template version ({template_version[:64]}) could not be found."
        ) from None
    return {"template_functions": found}
