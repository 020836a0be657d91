"""Heat's stacks: create, list, the 302 look-ups, show, update, delete, preview."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.api.deps import ReadSessionDep, SessionDep, SettingsDep, wake_after_commit
from canopy.api.orchestration.common import (
    ScopeDep,
    ServiceDep,
    WriterScopeDep,
    identified,
    lookup,
    redirect,
    stack_url,
)
from canopy.api.orchestration.listing import list_query
from canopy.api.orchestration.placement_view import placement_summary
from canopy.api.orchestration.views import stack_detail, stack_summary
from canopy.domain.context import RequestContext
from canopy.domain.errors import InvalidRequest
from canopy.orchestration.outputs import bound_of, outputs, shown_parameters
from canopy.orchestration.resolving import NothingLive
from canopy.orchestration.service import parse_request
from canopy.orchestration.template import StackIdentity
from canopy.store.models import Stack, StackResource

router = APIRouter()
AnyBody = Annotated[Any, Body()]
SUBPATHS = ("resources", "events", "template", "outputs")


@router.post("/stacks", status_code=201, summary="Create a stack")
async def create_stack(
    request: Request,
    body: AnyBody,
    ctx: WriterScopeDep,
    s: SessionDep,
    settings: SettingsDep,
    svc: ServiceDep,
) -> JSONResponse:
    name = body.get("stack_name") if isinstance(body, dict) else None
    stack = await svc.create(s, ctx, name, body)
    wake_after_commit(s, "orchestration")  # the stack loop alone; its step wakes the rest
    href = stack_url(request, settings, stack)
    return JSONResponse(
        {"stack": {"id": stack.id, "links": [{"href": href, "rel": "self"}]}},
        status_code=201,
        headers={"Location": href},
    )


@router.get("/stacks", summary="List the project's stacks")
async def list_stacks(
    request: Request, ctx: ScopeDep, s: ReadSessionDep, settings: SettingsDep
) -> dict[str, Any]:
    stacks = await list_query(s, ctx, request.query_params)
    return {"stacks": [stack_summary(x, stack_url(request, settings, x)) for x in stacks]}


@router.post("/stacks/preview", summary="What a stack would be, without creating it")
async def preview_stack(
    request: Request, body: AnyBody, ctx: ScopeDep, s: ReadSessionDep, svc: ServiceDep
) -> dict[str, Any]:
    if not isinstance(body, dict) or "stack_name" not in body:
        raise InvalidRequest("No stack name specified")  # Heat's preview needs one too
    name = body["stack_name"]
    req = parse_request(body, template_required=True)
    identity = StackIdentity(
        str(name or "preview"), "None", ctx.project_id, svc.settings.identity.region
    )
    bound = await svc.validate(s, ctx, req, identity)
    resources = []
    defs = bound.resources()
    for rname, d in sorted(defs.items()):
        try:
            props = bound.resolve(d.properties, NothingLive())
        except Exception:
            props = None
        resources.append(
            {
                "resource_name": rname,
                "resource_type": d.type,
                "resource_action": "INIT",
                "resource_status": "COMPLETE",
                "properties": props,
                "required_by": sorted(
                    o for o, od in bound.resources().items() if rname in od.depends_on
                ),
                "description": "",
            }
        )
    return {
        "stack": {
            "stack_name": name,
            "description": bound.template.description,
            "parameters": dict(bound.shown_parameters()),
            "resources": resources,
            "disable_rollback": True if req.disable_rollback is None else req.disable_rollback,
            "timeout_mins": req.timeout_mins,
        }
    }


async def _lookup(
    request: Request, s: AsyncSession, ctx: RequestContext, settings: Any, name: str, sub: str = ""
) -> RedirectResponse:
    return redirect(request, settings, await lookup(s, ctx.project_id, name), sub)


@router.get("/stacks/{stack_name}", status_code=302, summary="Find a stack by name or id")
@router.put("/stacks/{stack_name}", status_code=302, summary="Find a stack to update")
@router.patch("/stacks/{stack_name}", status_code=302, summary="Find a stack to update")
@router.delete("/stacks/{stack_name}", status_code=302, summary="Find a stack to delete")
async def find_stack(
    request: Request, stack_name: str, ctx: ScopeDep, s: ReadSessionDep, settings: SettingsDep
) -> RedirectResponse:
    return await _lookup(request, s, ctx, settings, stack_name)


def _subpath_lookup(sub: str) -> Any:
    async def find(
        request: Request, stack_name: str, ctx: ScopeDep, s: ReadSessionDep, settings: SettingsDep
    ) -> RedirectResponse:
        return await _lookup(request, s, ctx, settings, stack_name, sub)

    find.__name__ = f"find_stack_{sub}"
    return find


for _sub in SUBPATHS:
    router.get(f"/stacks/{{stack_name}}/{_sub}", status_code=302, summary=f"Find a stack's {_sub}")(
        _subpath_lookup(_sub)
    )


@router.get("/stacks/{stack_name}/{stack_id}", summary="Show a stack")
async def show_stack(
    request: Request,
    stack_name: str,
    stack_id: str,
    ctx: ScopeDep,
    s: ReadSessionDep,
    settings: SettingsDep,
    resolve_outputs: str = "true",
) -> dict[str, Any]:
    stack = await identified(s, ctx.project_id, stack_name, stack_id)
    bound = bound_of(stack, settings.identity.region)
    outs = None
    if resolve_outputs.lower() not in ("false", "0", "no", "off"):
        rows = list(
            (
                await s.execute(select(StackResource).where(StackResource.stack_id == stack.id))
            ).scalars()
        )
        outs = outputs(bound, rows)
    href = stack_url(request, settings, stack)
    shown = stack_detail(stack, href, shown_parameters(bound), outs)
    shown["canopy"] = await placement_summary(s, stack.id)  # where its servers went
    return {"stack": shown}


async def _update(
    stack_name: str,
    stack_id: str,
    body: Any,
    ctx: RequestContext,
    s: AsyncSession,
    svc: Any,
    *,
    patch: bool,
) -> Response:
    stack = await identified(s, ctx.project_id, stack_name, stack_id, live=True)
    stack = await svc.find(s, ctx.project_id, stack.id, lock=True)
    await svc.update(s, ctx, stack, body, patch=patch)
    wake_after_commit(s, "orchestration")  # the stack loop alone; its step wakes the rest
    return Response(status_code=202)


@router.put("/stacks/{stack_name}/{stack_id}", status_code=202, summary="Update a stack")
async def update_stack(
    stack_name: str,
    stack_id: str,
    body: AnyBody,
    ctx: WriterScopeDep,
    s: SessionDep,
    svc: ServiceDep,
) -> Response:
    return await _update(stack_name, stack_id, body, ctx, s, svc, patch=False)


@router.patch(
    "/stacks/{stack_name}/{stack_id}", status_code=202, summary="Update a stack, keeping the rest"
)
async def patch_stack(
    stack_name: str,
    stack_id: str,
    body: AnyBody,
    ctx: WriterScopeDep,
    s: SessionDep,
    svc: ServiceDep,
) -> Response:
    return await _update(stack_name, stack_id, body, ctx, s, svc, patch=True)


@router.delete("/stacks/{stack_name}/{stack_id}", status_code=204, summary="Delete a stack")
async def delete_stack(
    stack_name: str, stack_id: str, ctx: WriterScopeDep, s: SessionDep, svc: ServiceDep
) -> Response:
    stack = await identified(s, ctx.project_id, stack_name, stack_id, live=True)
    stack = await svc.find(s, ctx.project_id, stack.id, lock=True)
    await svc.delete(s, stack)
    wake_after_commit(s, "orchestration")  # the stack loop alone; its step wakes the rest
    return Response(status_code=204)


__all__ = ["Stack", "router"]
