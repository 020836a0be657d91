"""Who is calling: the X-Auth-Token check every OpenStack-compatible endpoint depends on."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from canopy.api.deps import get_clock, get_db
from canopy.api.request_id import request_id
from canopy.domain.context import RequestContext
from canopy.domain.errors import Forbidden, Unauthorized
from canopy.services.identity import validate_token


async def authenticate(request: Request) -> RequestContext:
    """The caller's project, user and roles from a valid, project-scoped token (else 401)."""
    token = request.headers.get("x-auth-token")
    if not token:
        raise Unauthorized("The request you have made requires authentication.")
    db = get_db(request)
    async with db.read() as s:
        info = await validate_token(s, token, get_clock(request).now())
    if info.project_id is None:
        raise Unauthorized("A project-scoped token is required.")
    ctx = RequestContext(
        project_id=info.project_id,
        user_id=info.user_id,
        roles=frozenset(info.roles),
        request_id=request_id(request),
    )
    request.state.context = ctx
    return ctx


def require_writer(ctx: Annotated[RequestContext, Depends(authenticate)]) -> RequestContext:
    """A caller who may change things: admin or member (a reader may only look)."""
    if not ctx.can_write:
        raise Forbidden("Policy doesn't allow this operation to be performed (reader role).")
    return ctx


def require_admin_role(
    ctx: Annotated[RequestContext, Depends(authenticate)],
) -> RequestContext:
    if not ctx.is_admin:
        raise Forbidden("Policy doesn't allow this operation to be performed (admin only).")
    return ctx


AuthDep = Annotated[RequestContext, Depends(authenticate)]
WriterDep = Annotated[RequestContext, Depends(require_writer)]
AdminRoleDep = Annotated[RequestContext, Depends(require_admin_role)]
