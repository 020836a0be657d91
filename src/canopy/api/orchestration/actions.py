"""A stack's actions (suspend, resume, check, cancel_update) and abandon."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response
from fastapi.responses import RedirectResponse

from canopy.api.deps import ClockDep, ReadSessionDep, SessionDep, SettingsDep, wake_after_commit
from canopy.api.orchestration.common import (
    ScopeDep,
    ServiceDep,
    WriterScopeDep,
    identified,
    lookup,
    redirect,
)
from canopy.orchestration.stack_actions import abandon, act, parse_action

router = APIRouter()


@router.post("/stacks/{stack_name}/actions", status_code=302, summary="Find a stack to act on")
async def find_stack_actions(
    request: Request, stack_name: str, ctx: ScopeDep, s: ReadSessionDep, settings: SettingsDep
) -> RedirectResponse:
    """`openstack stack suspend NAME` posts to the name: 302 to the stack (the client
    re-sends the body there)."""
    return redirect(request, settings, await lookup(s, ctx.project_id, stack_name), "actions")


@router.post(
    "/stacks/{stack_name}/{stack_id}/actions",
    status_code=200,
    summary="Suspend, resume, check a stack or cancel its update",
)
async def stack_action(
    stack_name: str,
    stack_id: str,
    body: Annotated[Any, Body()],
    ctx: WriterScopeDep,
    s: SessionDep,
    svc: ServiceDep,
    clock: ClockDep,
) -> Response:
    action = parse_action(body)
    stack = await identified(s, ctx.project_id, stack_name, stack_id, live=True)
    stack = await svc.find(s, ctx.project_id, stack.id, lock=True)
    await act(s, stack, action, clock)
    wake_after_commit(s, "orchestration")  # the stack loop alone; its step wakes the rest
    return Response(status_code=200)


@router.delete(
    "/stacks/{stack_name}/{stack_id}/abandon",
    summary="Forget a stack, keeping its resources; returns its data",
)
async def abandon_stack(
    stack_name: str,
    stack_id: str,
    ctx: WriterScopeDep,
    s: SessionDep,
    svc: ServiceDep,
    clock: ClockDep,
) -> dict[str, Any]:
    stack = await identified(s, ctx.project_id, stack_name, stack_id, live=True)
    stack = await svc.find(s, ctx.project_id, stack.id, lock=True)
    return await abandon(s, stack, clock)
