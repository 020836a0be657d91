"""Who is calling and what they may do: the one module that validates tokens and checks roles.

The X-Auth-Token is validated once per request (the result is kept on `request.state`),
whichever dependencies ask for it. Every role check of every service is here:

- `AuthDep`: any caller with a project-scoped token (reader, member, project or cloud admin);
- `WriterDep`: a caller who may change their project's resources (not a reader);
- `CloudAdminDep`: the admin role on the configured admin project (`[identity]
  admin_project_name`, Keystone's `admin_project_name` pattern). The admin role on any other
  project makes that project's admin, who may do there what a member may and nothing more;
- `HolderDep` and `identity_rule`/`self_rule`/`own_project_rule`: Keystone's checks, which
  also accept unscoped tokens.

Which caller may do what, route by route, is the table in docs/openstack-api.md, pinned by
tests/api/test_authorization.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from canopy.api.deps import get_clock, get_db, get_settings
from canopy.api.request_id import request_id
from canopy.api.token_cache import TokenCache
from canopy.config import Settings
from canopy.domain.context import RequestContext
from canopy.domain.errors import Forbidden, Unauthorized
from canopy.services.tokens import TokenInfo, validate_token

AUTH_REQUIRED = "The request you have made requires authentication."
_STATE_KEY = "canopy_token"


async def token_info(request: Request) -> TokenInfo:
    """The holder of X-Auth-Token, validated once per request (else 401), through the
    app's token cache (api/token_cache.py: revocation in this process at once, from other
    processes within 2 s)."""
    cached: TokenInfo | None = getattr(request.state, _STATE_KEY, None)
    if cached is not None:
        return cached
    token = request.headers.get("x-auth-token")
    if not token:
        raise Unauthorized(AUTH_REQUIRED)
    now = get_clock(request).now()

    async def load() -> TokenInfo:
        async with get_db(request).read() as s:
            return await validate_token(s, token, now)

    cache: TokenCache | None = getattr(request.app.state, "token_cache", None)
    info = await (cache.fetch(token, now, load) if cache is not None else load())
    setattr(request.state, _STATE_KEY, info)
    return info


def is_admin_project(info: TokenInfo, settings: Settings) -> bool:
    """Whether the token is scoped to the admin project (Keystone's `is_admin_project`)."""
    return info.project_id is not None and info.project_name == (
        settings.identity.admin_project_name
    )


# Project-scoped callers (compute, image, /canopy/v1) -------------------------------------


async def authenticate(request: Request) -> RequestContext:
    """The caller's project, user, roles and standing from a valid, project-scoped token."""
    info = await token_info(request)
    if info.project_id is None:
        raise Unauthorized("A project-scoped token is required.")
    ctx = RequestContext(
        project_id=info.project_id,
        user_id=info.user_id,
        roles=frozenset(info.roles),
        request_id=request_id(request),
        is_admin_project=is_admin_project(info, get_settings(request)),
    )
    request.state.context = ctx
    return ctx


AuthDep = Annotated[RequestContext, Depends(authenticate)]


async def require_writer(ctx: AuthDep) -> RequestContext:
    """A caller who may change things: a member or an admin (a reader may only look)."""
    if not ctx.can_write:
        raise Forbidden("Policy doesn't allow this operation to be performed (reader role).")
    return ctx


async def require_cloud_admin(ctx: AuthDep) -> RequestContext:
    """A cloud-wide admin: the admin role on the admin project."""
    if not ctx.is_cloud_admin:
        raise Forbidden(
            "Policy doesn't allow this operation to be performed (cloud admin only: the "
            "admin role on the admin project)."
        )
    return ctx


WriterDep = Annotated[RequestContext, Depends(require_writer)]
CloudAdminDep = Annotated[RequestContext, Depends(require_cloud_admin)]


# Keystone's callers: any valid token, scoped or not ---------------------------------------


@dataclass(frozen=True, slots=True)
class Holder:
    """The holder of a valid token, and whether that makes them a cloud admin."""

    token: TokenInfo
    is_cloud_admin: bool

    @property
    def user_id(self) -> str:
        return self.token.user_id

    @property
    def project_id(self) -> str | None:
        return self.token.project_id


async def token_holder(request: Request) -> Holder:
    info = await token_info(request)
    admin = "admin" in info.roles and is_admin_project(info, get_settings(request))
    return Holder(info, admin)


HolderDep = Annotated[Holder, Depends(token_holder)]


def authorize(holder: Holder, action: str, *, allowed: bool = False) -> None:
    """Keystone's policy in one line: a cloud admin may; others only what `allowed` says."""
    if not (allowed or holder.is_cloud_admin):
        raise Forbidden(
            f"You are not authorized to perform the requested action: identity:{action}."
        )


def identity_rule(action: str) -> Callable[[Holder], Holder]:
    """A dependency: only a cloud admin may perform `action`."""

    def rule(holder: HolderDep) -> Holder:
        authorize(holder, action)
        return holder

    return rule


def self_rule(action: str) -> Callable[[str, Holder], Holder]:
    """A dependency for routes on `{user_id}`: that user themselves, or a cloud admin."""

    def rule(user_id: str, holder: HolderDep) -> Holder:
        authorize(holder, action, allowed=user_id == holder.user_id)
        return holder

    return rule


def own_project_rule(action: str) -> Callable[[str, Holder], Holder]:
    """A dependency for routes on `{project_id}`: the token's own project, or a cloud admin."""

    def rule(project_id: str, holder: HolderDep) -> Holder:
        authorize(holder, action, allowed=project_id == holder.project_id)
        return holder

    return rule
