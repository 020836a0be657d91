"""A stack's resources, events, outputs and template."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.api.deps import ClockDep, ReadSessionDep, SessionDep, SettingsDep
from canopy.api.orchestration.common import (
    ScopeDep,
    ServiceDep,
    WriterScopeDep,
    identified,
    stack_url,
)
from canopy.api.orchestration.nested_view import (
    link_nested,
    nested_depth,
    nested_items,
    present_rows,
    with_descendants,
)
from canopy.api.orchestration.views import event_view, required_by, resource_view
from canopy.domain.errors import InvalidRequest, NotFound
from canopy.orchestration.health_marks import mark, parse_mark
from canopy.orchestration.outputs import bound_of, outputs, resource_metadata
from canopy.orchestration.resources.software_deployment import (
    server_deployments,
    takes_deployments,
)
from canopy.store.models import Stack, StackEvent, StackResource

router = APIRouter()
STACK = "/stacks/{stack_name}/{stack_id}"
MAX_EVENTS = 1000


@router.get(STACK + "/resources", summary="List a stack's resources")
async def list_resources(
    request: Request,
    stack_name: str,
    stack_id: str,
    ctx: ScopeDep,
    s: ReadSessionDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    stack = await identified(s, ctx.project_id, stack_name, stack_id)
    q = request.query_params
    depth = nested_depth(q.get("nested_depth"))
    rows = await present_rows(s, stack)
    needed = required_by(rows)
    href = stack_url(request, settings, stack)
    items = [
        _view(r, href, needed[r.name], parent)
        for r, parent, level in nested(rows)
        if level <= depth
    ]
    items += await nested_items(request, settings, s, stack, items, depth)
    for key, field in (("type", "resource_type"), ("name", "resource_name")):
        if q.getlist(key):
            items = [i for i in items if i[field] in q.getlist(key)]
    if q.getlist("status"):
        wanted = q.getlist("status")
        items = [
            i
            for i in items
            if i["resource_status"] in wanted or i["resource_status"].split("_", 1)[1] in wanted
        ]
    return {"resources": items}


@router.get(STACK + "/resources/{resource_name}", summary="Show a stack's resource")
async def show_resource(
    request: Request,
    stack_name: str,
    stack_id: str,
    resource_name: str,
    ctx: ScopeDep,
    s: ReadSessionDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    stack = await identified(s, ctx.project_id, stack_name, stack_id)
    rows = await present_rows(s, stack)
    found = _named(rows, resource_name)
    href = stack_url(request, settings, stack)
    parents = {r.id: p for r, p, _ in nested(rows)}
    view = _view(found, href, required_by(rows)[found.name], parents[found.id], detail=True)
    view["metadata"] = await _metadata(s, stack, rows, found, settings.identity.region)
    await link_nested(request, settings, s, stack, [view])
    return {"resource": view}


@router.patch(STACK + "/resources/{resource_name}", summary="Mark a resource (un)healthy")
async def mark_resource(
    stack_name: str,
    stack_id: str,
    resource_name: str,
    body: Annotated[Any, Body()],
    ctx: WriterScopeDep,
    s: SessionDep,
    svc: ServiceDep,
    clock: ClockDep,
) -> Response:
    """`openstack stack resource mark unhealthy`: CHECK_FAILED (replaced by the next
    update), or back to CHECK_COMPLETE (orchestration/health_marks.py)."""
    unhealthy, reason = parse_mark(body)
    stack = await identified(s, ctx.project_id, stack_name, stack_id, live=True)
    stack = await svc.find(s, ctx.project_id, stack.id, lock=True)
    await mark(s, stack, resource_name, unhealthy, reason, clock.now())
    return Response(status_code=200)


@router.get(STACK + "/resources/{resource_name}/metadata", summary="A resource's metadata")
async def show_resource_metadata(
    stack_name: str,
    stack_id: str,
    resource_name: str,
    ctx: ScopeDep,
    s: ReadSessionDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    """`openstack stack resource metadata STACK RESOURCE`: the template's `metadata` section
    of the resource, resolved now; a server with user_data_format SOFTWARE_CONFIG adds its
    `deployments` (what the agent on it polls, os-collect-config's heat collector)."""
    stack = await identified(s, ctx.project_id, stack_name, stack_id)
    rows = await present_rows(s, stack)
    found = _named(rows, resource_name)
    return {"metadata": await _metadata(s, stack, rows, found, settings.identity.region)}


def _named(rows: list[StackResource], name: str) -> StackResource:
    found = next((r for r in rows if r.name == name), None)
    if found is None:
        raise NotFound(f"The Resource ({name[:255]}) could not be found.")
    return found


async def _metadata(
    s: AsyncSession, stack: Stack, rows: list[StackResource], res: StackResource, region: str
) -> dict[str, Any]:
    """The template's metadata section of `res`, resolved now ({} for a group's member),
    with a software-config server's `deployments` (Heat's server metadata)."""
    found = (
        {}
        if res.group_id is not None
        else resource_metadata(bound_of(stack, region), rows, res.name)
    )
    if takes_deployments(res):
        found = {
            **found,
            "deployments": await server_deployments(s, stack.project_id, res.physical_resource_id),
        }
    return found


def nested(rows: list[StackResource]) -> list[tuple[StackResource, str | None, int]]:
    """Each row with its group's name (None for a resource of the template) and its depth
    (0 for the template's, 1 for a group's member, 2 for a member of a member...)."""
    by_id = {r.id: r for r in rows}
    out = []
    for r in rows:
        level, up = 0, r
        while up.group_id is not None and up.group_id in by_id and level < 32:
            up = by_id[up.group_id]
            level += 1
        parent = by_id[r.group_id].name if r.group_id in by_id else None
        out.append((r, parent, level))
    return out


def _view(
    r: StackResource, href: str, needed: list[str], parent: str | None, *, detail: bool = False
) -> dict[str, Any]:
    view = resource_view(r, href, needed, detail=detail)
    if parent is not None:
        view["parent_resource"] = parent
    return view


async def _events(
    request: Request, s: AsyncSession, stacks: dict[str, Stack], resource: str | None
) -> list[StackEvent]:
    """The events of `stacks` (a stack, or it and its nested stacks), in one order: `seq`
    is one sequence over every stack, so a marker pages across them as in one stack."""
    q = request.query_params
    ids = list(stacks)
    query = select(StackEvent).where(StackEvent.stack_id.in_(ids))
    names = [resource] if resource is not None else q.getlist("resource_name")
    if names:
        query = query.where(StackEvent.resource_name.in_(names))
    if q.getlist("resource_action"):
        query = query.where(StackEvent.action.in_(q.getlist("resource_action")))
    if q.getlist("resource_status"):
        query = query.where(StackEvent.status.in_(q.getlist("resource_status")))
    if q.getlist("resource_type"):
        query = query.where(StackEvent.resource_type.in_(q.getlist("resource_type")))
    direction = (q.get("sort_dir") or "asc").lower()
    if direction not in ("asc", "desc"):
        raise InvalidRequest("sort_dir must be asc or desc.")
    for key in (k for raw in q.getlist("sort_keys") for k in raw.split(",") if k):
        if key not in ("event_time", "created_at", "resource_type", "resource_name", "id"):
            raise InvalidRequest(f"Sortkey {key!r} is not supported for events.")
    marker = q.get("marker")
    if marker:
        seq = await s.scalar(
            select(StackEvent.seq).where(StackEvent.id == marker, StackEvent.stack_id.in_(ids))
        )
        if seq is None:
            raise NotFound(f"The Event ({marker[:64]}) could not be found (marker).")
        query = query.where(StackEvent.seq > seq if direction == "asc" else StackEvent.seq < seq)
    query = query.order_by(StackEvent.seq.asc() if direction == "asc" else StackEvent.seq.desc())
    limit = q.get("limit")
    n = MAX_EVENTS
    if limit is not None:
        try:
            n = min(int(limit), MAX_EVENTS)
        except ValueError:
            raise InvalidRequest("limit must be a whole number.") from None
        if n < 0:
            raise InvalidRequest("limit must not be negative.")
    return list((await s.execute(query.limit(n))).scalars())


@router.get(STACK + "/events", summary="List a stack's events")
async def list_events(
    request: Request,
    stack_name: str,
    stack_id: str,
    ctx: ScopeDep,
    s: ReadSessionDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    """With `nested_depth`, the events of the nested stacks too, each linked to its own
    stack and to this one as `root_stack` (Heat's sign that the server did the nesting:
    python-heatclient then does not walk the nested stacks itself)."""
    stack = await identified(s, ctx.project_id, stack_name, stack_id)
    depth = nested_depth(request.query_params.get("nested_depth"))
    stacks = await with_descendants(s, stack, depth)
    hrefs = {sid: stack_url(request, settings, st) for sid, st in stacks.items()}
    root = {"href": hrefs[stack.id], "rel": "root_stack"}
    out = []
    for e in await _events(request, s, stacks, None):
        view = event_view(e, hrefs[e.stack_id])
        if depth:
            view["links"].append(root)
        out.append(view)
    return {"events": out}


@router.get(STACK + "/resources/{resource_name}/events", summary="List a resource's events")
async def list_resource_events(
    request: Request,
    stack_name: str,
    stack_id: str,
    resource_name: str,
    ctx: ScopeDep,
    s: ReadSessionDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    stack = await identified(s, ctx.project_id, stack_name, stack_id)
    href = stack_url(request, settings, stack)
    found = await _events(request, s, {stack.id: stack}, resource_name)
    return {"events": [event_view(e, href) for e in found]}


@router.get(STACK + "/resources/{resource_name}/events/{event_id}", summary="Show one event")
async def show_event(
    request: Request,
    stack_name: str,
    stack_id: str,
    resource_name: str,
    event_id: str,
    ctx: ScopeDep,
    s: ReadSessionDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    stack = await identified(s, ctx.project_id, stack_name, stack_id)
    e = (
        await s.execute(
            select(StackEvent).where(
                StackEvent.id == event_id,
                StackEvent.stack_id == stack.id,
                StackEvent.resource_name == resource_name,
            )
        )
    ).scalar_one_or_none()
    if e is None:
        raise NotFound(f"The Event ({event_id[:64]}) could not be found.")
    return {"event": event_view(e, stack_url(request, settings, stack), detail=True)}


@router.get(STACK + "/outputs", summary="List a stack's outputs")
async def list_outputs(
    stack_name: str, stack_id: str, ctx: ScopeDep, s: ReadSessionDep, settings: SettingsDep
) -> dict[str, Any]:
    stack = await identified(s, ctx.project_id, stack_name, stack_id)
    bound = bound_of(stack, settings.identity.region)
    keys = [] if bound is None else sorted(bound.outputs().items())
    return {"outputs": [{"output_key": k, "description": o.description} for k, o in keys]}


@router.get(STACK + "/outputs/{output_key}", summary="Show one output, resolved now")
async def show_output(
    stack_name: str,
    stack_id: str,
    output_key: str,
    ctx: ScopeDep,
    s: ReadSessionDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    stack = await identified(s, ctx.project_id, stack_name, stack_id)
    bound = bound_of(stack, settings.identity.region)
    for entry in outputs(bound, await present_rows(s, stack)):
        if entry["output_key"] == output_key:
            return {"output": entry}
    raise NotFound(f"The Output ({output_key[:255]}) could not be found.")


@router.get(STACK + "/template", summary="The stack's template as it was given")
async def show_template(
    stack_name: str, stack_id: str, ctx: ScopeDep, s: ReadSessionDep
) -> dict[str, Any]:
    stack = await identified(s, ctx.project_id, stack_name, stack_id)
    return dict(stack.template)
