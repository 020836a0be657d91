"""What every Heat route shares: the project in the path, links, the 302 look-up."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.api.auth import AuthDep
from canopy.api.deps import ClockDep, SettingsDep
from canopy.api.image.versions import base_url
from canopy.config import Settings
from canopy.domain.context import RequestContext
from canopy.domain.errors import Forbidden, NotFound
from canopy.orchestration.service import StackService
from canopy.store.models import Stack

PREFIX = "/orchestration/v1/{project_id}"


def project_scope(project_id: str, ctx: AuthDep) -> RequestContext:
    """The caller acting in the path's project: their own, or any for a cloud admin (Heat
    answers 403 when the path names another project than the token's)."""
    if project_id == ctx.project_id:
        return ctx
    if not ctx.is_cloud_admin:
        raise Forbidden("You are not authorized to use this project's orchestration endpoint.")
    return RequestContext(
        project_id=project_id,
        user_id=ctx.user_id,
        roles=ctx.roles,
        request_id=ctx.request_id,
        is_admin_project=ctx.is_admin_project,
    )


def writer_scope(ctx: Annotated[RequestContext, Depends(project_scope)]) -> RequestContext:
    if not ctx.can_write:
        raise Forbidden("Policy doesn't allow this operation to be performed (reader role).")
    return ctx


ScopeDep = Annotated[RequestContext, Depends(project_scope)]
WriterScopeDep = Annotated[RequestContext, Depends(writer_scope)]


async def stack_service(settings: SettingsDep, clock: ClockDep) -> StackService:
    return StackService(settings, clock)


ServiceDep = Annotated[StackService, Depends(stack_service)]


def stacks_url(request: Request, settings: Settings, project_id: str) -> str:
    return f"{base_url(request, settings)}/orchestration/v1/{project_id}/stacks"


def stack_url(request: Request, settings: Settings, stack: Stack) -> str:
    base = stacks_url(request, settings, stack.project_id)
    return f"{base}/{quote(stack.name, safe='')}/{stack.id}"


async def lookup(s: AsyncSession, project_id: str, name_or_id: str) -> Stack:
    """A stack by id (deleted ones too, as Heat does) or by the name of a live one."""
    stack = (
        await s.execute(select(Stack).where(Stack.id == name_or_id, Stack.project_id == project_id))
    ).scalar_one_or_none()
    if stack is None:
        stack = (
            await s.execute(
                select(Stack).where(
                    Stack.name == name_or_id,
                    Stack.project_id == project_id,
                    Stack.deleted.is_(False),
                )
            )
        ).scalar_one_or_none()
    if stack is None:
        raise NotFound(f"The Stack ({name_or_id[:255]}) could not be found.")
    return stack


async def identified(
    s: AsyncSession, project_id: str, name: str, stack_id: str, *, live: bool = False
) -> Stack:
    """The stack named by `/stacks/{name}/{id}`: both must match."""
    stack = (
        await s.execute(select(Stack).where(Stack.id == stack_id, Stack.project_id == project_id))
    ).scalar_one_or_none()
    if stack is None or stack.name != name or (live and stack.deleted):
        raise NotFound(f"The Stack ({name[:255]}) could not be found.")
    return stack


def redirect(
    request: Request, settings: Settings, stack: Stack, subpath: str = ""
) -> RedirectResponse:
    """302 to the stack's canonical URL, keeping the subpath and the query (the client
    re-sends the same method and body there)."""
    url = stack_url(request, settings, stack) + (f"/{subpath}" if subpath else "")
    if request.url.query:
        url += f"?{request.url.query}"
    return RedirectResponse(url, status_code=302)
