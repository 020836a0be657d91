"""Users (all in domain Default): managed by cloud admins; a user may read themselves,
list their projects and change their own password."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.api.auth import identity_rule, self_rule
from canopy.api.deps import ClockDep, DatabaseDep, ReadSessionDep, SessionDep
from canopy.api.identity.common import (
    V3,
    PasswordsDep,
    ThrottleDep,
    client_address,
    collection_links,
    flag,
    page,
    self_link,
)
from canopy.api.identity.projects import check_domain_id, project_view
from canopy.domain.errors import InvalidRequest, NotFound, Unauthorized
from canopy.services import identity
from canopy.services.identity import DEFAULT_DOMAIN
from canopy.services.login import PasswordCheck
from canopy.services.passwords import UNUSABLE
from canopy.store.models import User

router = APIRouter(tags=["identity"])

USERS = V3 + "/users"


def user_view(request: Request, u: User) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": u.id,
        "name": u.name,
        "domain_id": u.domain_id,
        "enabled": u.enabled,
        "password_expires_at": None,
        "options": {},
        "links": self_link(request, f"/users/{u.id}"),
    }
    # Keystone shows these only when set.
    if u.default_project_id:
        view["default_project_id"] = u.default_project_id
    if u.email:
        view["email"] = u.email
    if u.description:
        view["description"] = u.description
    return view


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore")


class UserCreate(_In):
    name: str = Field(min_length=1, max_length=255)
    password: str | None = Field(default=None, max_length=4096)
    default_project_id: str | None = None
    email: str | None = Field(default=None, max_length=255)
    description: str | None = None
    enabled: bool = True
    domain_id: str | None = None


class UserCreateBody(_In):
    user: UserCreate


class UserUpdate(_In):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    password: str | None = Field(default=None, min_length=1, max_length=4096)
    default_project_id: str | None = None
    email: str | None = Field(default=None, max_length=255)
    description: str | None = None
    enabled: bool | None = None
    domain_id: str | None = None


class UserUpdateBody(_In):
    user: UserUpdate


class PasswordChange(_In):
    password: str = Field(min_length=1, max_length=4096)
    original_password: str = Field(max_length=4096)


class PasswordChangeBody(_In):
    user: PasswordChange


@router.get(USERS, dependencies=[Depends(identity_rule("list_users"))])
async def list_users(
    request: Request,
    s: ReadSessionDep,
    name: str | None = None,
    domain_id: str | None = None,
    enabled: str | None = None,
    limit: int | None = Query(default=None, ge=1),
    marker: str | None = None,
) -> dict[str, Any]:
    """Every user (cloud admin), filtered by name, domain, enabled."""
    users: list[User] = []
    if domain_id in (None, DEFAULT_DOMAIN[0]):
        users = await identity.list_users(s, name=name, enabled=flag(enabled, "enabled"))
    shown, next_url = page(request, users, lambda u: u.id, limit, marker)
    return {
        "users": [user_view(request, u) for u in shown],
        "links": collection_links(request, next_url),
    }


async def _check_project(s: AsyncSession, project_id: str | None) -> None:
    if project_id:
        try:
            await identity.find_project(s, id=project_id)
        except NotFound as e:
            raise InvalidRequest(f"{e} (default_project_id)") from None


@router.post(USERS, status_code=201, dependencies=[Depends(identity_rule("create_user"))])
async def create_user(
    request: Request,
    body: UserCreateBody,
    db: DatabaseDep,
    clock: ClockDep,
    passwords: PasswordsDep,
) -> dict[str, Any]:
    """Create a user. One without a password exists but cannot log in until given one."""
    want = body.user
    check_domain_id(want.domain_id)
    # Hashed before the transaction opens: Argon2 never holds the write lock.
    password_hash = await passwords.hash(want.password) if want.password else UNUSABLE
    async with db.session() as s:
        await _check_project(s, want.default_project_id)
        u = await identity.create_user(
            s,
            want.name,
            password_hash,
            clock.now(),
            default_project_id=want.default_project_id,
            email=want.email,
            description=want.description or "",
            enabled=want.enabled,
        )
    return {"user": user_view(request, u)}


@router.get(USERS + "/{user_id}", dependencies=[Depends(self_rule("get_user"))])
async def show_user(request: Request, user_id: str, s: ReadSessionDep) -> dict[str, Any]:
    """One user: a cloud admin sees any, others only themselves."""
    return {"user": user_view(request, await identity.find_user(s, id=user_id))}


@router.patch(USERS + "/{user_id}", dependencies=[Depends(identity_rule("update_user"))])
async def update_user(
    request: Request,
    user_id: str,
    body: UserUpdateBody,
    db: DatabaseDep,
    passwords: PasswordsDep,
) -> dict[str, Any]:
    """Change a user; a new password revokes all of the user's tokens."""
    want = body.user
    password_hash = await passwords.hash(want.password) if want.password is not None else None
    async with db.session() as s:
        u = await identity.find_user(s, id=user_id)
        if want.domain_id is not None and want.domain_id != u.domain_id:
            raise InvalidRequest("A user cannot move to another domain.")
        await _check_project(s, want.default_project_id)
        await identity.update_user(
            s,
            u,
            name=want.name,
            password_hash=password_hash,
            email=want.email,
            description=want.description,
            default_project_id=want.default_project_id,
            enabled=want.enabled,
        )
    return {"user": user_view(request, u)}


@router.delete(
    USERS + "/{user_id}", status_code=204, dependencies=[Depends(identity_rule("delete_user"))]
)
async def delete_user(user_id: str, s: SessionDep) -> Response:
    """Delete a user with their role assignments and tokens."""
    await identity.delete_user(s, await identity.find_user(s, id=user_id))
    return Response(status_code=204)


@router.get(USERS + "/{user_id}/projects", dependencies=[Depends(self_rule("list_user_projects"))])
async def user_projects(request: Request, user_id: str, s: ReadSessionDep) -> dict[str, Any]:
    """The projects a user holds a role on (a cloud admin for anyone, others for themselves)."""
    await identity.find_user(s, id=user_id)
    return {
        "projects": [project_view(request, p) for p in await identity.user_projects(s, user_id)],
        "links": collection_links(request),
    }


@router.get(USERS + "/{user_id}/groups", dependencies=[Depends(self_rule("list_groups_for_user"))])
async def user_groups(request: Request, user_id: str, s: ReadSessionDep) -> dict[str, Any]:
    """Canopy has no groups: always empty."""
    await identity.find_user(s, id=user_id)
    return {"groups": [], "links": collection_links(request)}


@router.post(
    USERS + "/{user_id}/password",
    status_code=204,
    dependencies=[Depends(self_rule("change_password"))],
)
async def change_password(
    request: Request,
    user_id: str,
    body: PasswordChangeBody,
    db: DatabaseDep,
    clock: ClockDep,
    passwords: PasswordsDep,
    policy: ThrottleDep,
) -> Response:
    """A user changes their own password (the old one is required, and guessing it is
    throttled like a login); the user's tokens are revoked."""
    check = PasswordCheck(db, passwords, policy, clock)
    try:
        await check.user(
            body.user.original_password, user_id=user_id, address=client_address(request)
        )
    except Unauthorized:
        raise Unauthorized("The original password is not correct.") from None
    password_hash = await passwords.hash(body.user.password)
    async with db.session() as s:
        u = await identity.find_user(s, id=user_id)
        await identity.update_user(s, u, password_hash=password_hash)
    return Response(status_code=204)
