"""Identity: projects, users and role assignments (Keystone's model).

Passwords are stored as Argon2id hashes made by `canopy.services.passwords` (outside any
transaction); tokens are in `canopy.services.tokens`, logins in `canopy.services.login`.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.domain.errors import Conflict, InvalidRequest, NotFound, Unauthorized
from canopy.services.passwords import PasswordHash
from canopy.store.models import (
    ApplicationCredential,
    Project,
    RoleAssignment,
    Server,
    Token,
    User,
)

ROLES = ("admin", "member", "reader")
# Stable role ids, so `openstack role list` shows the same ids everywhere.
ROLE_IDS = {r: uuid.uuid5(uuid.NAMESPACE_URL, f"canopy:role:{r}").hex for r in ROLES}
DEFAULT_DOMAIN = ("default", "Default")
AUTH_FAILED = "The request you have made requires authentication."


async def find_project(
    s: AsyncSession, *, id: str | None = None, name: str | None = None
) -> Project:
    if id:
        p = await s.get(Project, id)
    elif name:
        p = (await s.execute(select(Project).where(Project.name == name))).scalar_one_or_none()
    else:
        raise InvalidRequest("a project needs an id or a name")
    if p is None:
        raise NotFound(f"Could not find project: {id or name}.")
    return p


async def find_user(s: AsyncSession, *, id: str | None = None, name: str | None = None) -> User:
    if id:
        u = await s.get(User, id)
    elif name:
        u = (await s.execute(select(User).where(User.name == name))).scalar_one_or_none()
    else:
        raise InvalidRequest("a user needs an id or a name")
    if u is None:
        raise NotFound(f"Could not find user: {id or name}.")
    return u


async def create_project(
    s: AsyncSession, name: str, now: datetime, *, description: str = "", enabled: bool = True
) -> Project:
    if not name or len(name) > 64:
        raise InvalidRequest("a project name must be 1 to 64 characters")
    exists = (await s.execute(select(Project).where(Project.name == name))).scalar_one_or_none()
    if exists is not None:
        raise Conflict(f"Conflict occurred attempting to store project - duplicate name {name}.")
    p = Project(
        id=uuid.uuid4().hex,
        name=name,
        domain_id="default",
        description=description,
        enabled=enabled,
        created_at=now,
    )
    s.add(p)
    await s.flush()
    return p


async def create_user(
    s: AsyncSession,
    name: str,
    password_hash: PasswordHash,
    now: datetime,
    *,
    default_project_id: str | None = None,
    email: str | None = None,
    description: str = "",
    enabled: bool = True,
) -> User:
    if not name or len(name) > 255:
        raise InvalidRequest("a user name must be 1 to 255 characters")
    exists = (await s.execute(select(User).where(User.name == name))).scalar_one_or_none()
    if exists is not None:
        raise Conflict(f"Conflict occurred attempting to store user - duplicate name {name}.")
    u = User(
        id=uuid.uuid4().hex,
        name=name,
        domain_id="default",
        password_hash=password_hash,
        enabled=enabled,
        default_project_id=default_project_id,
        email=email,
        description=description,
        created_at=now,
    )
    s.add(u)
    await s.flush()
    return u


async def grant(s: AsyncSession, user_id: str, project_id: str, role: str) -> None:
    if role not in ROLES:
        raise NotFound(f"Could not find role: {role}.")
    if await s.get(RoleAssignment, (user_id, project_id, role)) is None:
        s.add(RoleAssignment(user_id=user_id, project_id=project_id, role=role))
        await s.flush()


async def roles_on(s: AsyncSession, user_id: str, project_id: str) -> list[str]:
    rows = await s.execute(
        select(RoleAssignment.role).where(
            RoleAssignment.user_id == user_id, RoleAssignment.project_id == project_id
        )
    )
    return sorted(set(rows.scalars()))


# Authentication -----------------------------------------------------------------------


def check_domain(domain_id: str | None = None, domain_name: str | None = None) -> None:
    """Only domain Default exists: any other domain id or name is Unauthorized."""
    if domain_id is not None and domain_id != DEFAULT_DOMAIN[0]:
        raise Unauthorized(AUTH_FAILED)
    if domain_name is not None and domain_name != DEFAULT_DOMAIN[1]:
        raise Unauthorized(AUTH_FAILED)


async def default_scope(s: AsyncSession, user: User) -> Project | None:
    """Keystone's rule for a request without a scope: the user's default project, if it is
    enabled and the user holds a role on it; else no project (an unscoped token)."""
    if not user.default_project_id:
        return None
    p = await s.get(Project, user.default_project_id)
    if p is None or not p.enabled or not await roles_on(s, user.id, p.id):
        return None
    return p


async def revoke_user_tokens(
    s: AsyncSession, user_id: str, *, project_id: str | None = None
) -> None:
    """Revoke every token of `user_id` (after a password change, or when the user is
    disabled), or only those scoped to `project_id` (a role on it removed).

    Keystone records such revocations as events, so enabling the user again or granting
    the role again never brings a token back: whoever held it must log in again."""
    q = update(Token).where(Token.user_id == user_id)
    if project_id is not None:
        q = q.where(Token.project_id == project_id)
    await s.execute(q.values(revoked=True))


async def revoke_project_tokens(s: AsyncSession, project_id: str) -> None:
    """Revoke every token scoped to `project_id` (disabled or deleted), as Keystone does."""
    await s.execute(update(Token).where(Token.project_id == project_id).values(revoked=True))


# Projects -----------------------------------------------------------------------------


async def list_projects(
    s: AsyncSession, *, name: str | None = None, enabled: bool | None = None
) -> list[Project]:
    q = select(Project).order_by(Project.id)
    if name is not None:
        q = q.where(Project.name == name)
    if enabled is not None:
        q = q.where(Project.enabled.is_(enabled))
    return list((await s.execute(q)).scalars())


async def user_projects(s: AsyncSession, user_id: str) -> list[Project]:
    """The projects `user_id` holds any role on."""
    q = (
        select(Project)
        .where(
            Project.id.in_(
                select(RoleAssignment.project_id).where(RoleAssignment.user_id == user_id)
            )
        )
        .order_by(Project.id)
    )
    return list((await s.execute(q)).scalars())


async def update_project(
    s: AsyncSession,
    p: Project,
    *,
    name: str | None = None,
    description: str | None = None,
    enabled: bool | None = None,
) -> Project:
    if name is not None and name != p.name:
        if not name or len(name) > 64:
            raise InvalidRequest("a project name must be 1 to 64 characters")
        taken = (await s.execute(select(Project.id).where(Project.name == name))).first()
        if taken is not None:
            raise Conflict(
                f"Conflict occurred attempting to store project - duplicate name {name}."
            )
        p.name = name
    if description is not None:
        p.description = description
    if enabled is not None:
        if p.enabled and not enabled:
            await revoke_project_tokens(s, p.id)
        p.enabled = enabled
    await s.flush()
    return p


async def delete_project(s: AsyncSession, p: Project) -> None:
    """Delete `p` with its role assignments; refused while it still has servers."""
    live = (
        await s.execute(
            select(func.count())
            .select_from(Server)
            .where(Server.project_id == p.id, Server.deleted.is_(False))
        )
    ).scalar_one()
    if live:
        raise Conflict(
            f"Project {p.name} still has {live} server(s); delete them before the project."
        )
    await s.execute(delete(RoleAssignment).where(RoleAssignment.project_id == p.id))
    await s.execute(delete(ApplicationCredential).where(ApplicationCredential.project_id == p.id))
    await revoke_project_tokens(s, p.id)
    await s.delete(p)
    await s.flush()


# Users --------------------------------------------------------------------------------


async def list_users(
    s: AsyncSession, *, name: str | None = None, enabled: bool | None = None
) -> list[User]:
    q = select(User).order_by(User.id)
    if name is not None:
        q = q.where(User.name == name)
    if enabled is not None:
        q = q.where(User.enabled.is_(enabled))
    return list((await s.execute(q)).scalars())


async def update_user(
    s: AsyncSession,
    u: User,
    *,
    name: str | None = None,
    password_hash: PasswordHash | None = None,
    email: str | None = None,
    description: str | None = None,
    default_project_id: str | None = None,
    enabled: bool | None = None,
) -> User:
    """Change `u`; a new password (hashed by the caller, outside the transaction) or
    disabling the user revokes every token the user holds, as Keystone does."""
    if name is not None and name != u.name:
        if not name or len(name) > 255:
            raise InvalidRequest("a user name must be 1 to 255 characters")
        taken = (await s.execute(select(User.id).where(User.name == name))).first()
        if taken is not None:
            raise Conflict(f"Conflict occurred attempting to store user - duplicate name {name}.")
        u.name = name
    if password_hash is not None:
        u.password_hash = password_hash
        await revoke_user_tokens(s, u.id)
    if email is not None:
        u.email = email or None
    if description is not None:
        u.description = description
    if default_project_id is not None:
        u.default_project_id = default_project_id or None
    if enabled is not None:
        if u.enabled and not enabled:
            await revoke_user_tokens(s, u.id)
            # Keystone deletes a disabled user's application credentials too.
            await _drop_app_creds(s, u.id)
        u.enabled = enabled
    await s.flush()
    return u


async def _drop_app_creds(s: AsyncSession, user_id: str, project_id: str | None = None) -> None:
    q = delete(ApplicationCredential).where(ApplicationCredential.user_id == user_id)
    if project_id is not None:
        q = q.where(ApplicationCredential.project_id == project_id)
    await s.execute(q)


async def delete_user(s: AsyncSession, u: User) -> None:
    await _drop_app_creds(s, u.id)
    await s.execute(delete(Token).where(Token.user_id == u.id))
    await s.execute(delete(RoleAssignment).where(RoleAssignment.user_id == u.id))
    await s.delete(u)
    await s.flush()


# Role assignments ---------------------------------------------------------------------


def role_by_id(role_id: str) -> str:
    """The role name for a role id, else NotFound."""
    for name, rid in ROLE_IDS.items():
        if role_id == rid:
            return name
    raise NotFound(f"Could not find role: {role_id}.")


async def ungrant(s: AsyncSession, user_id: str, project_id: str, role: str) -> None:
    a = await s.get(RoleAssignment, (user_id, project_id, role))
    if a is None:
        raise NotFound(f"Could not find role assignment with role: {ROLE_IDS.get(role, role)}.")
    await revoke_user_tokens(s, user_id, project_id=project_id)
    await s.delete(a)
    await s.flush()
    if not await roles_on(s, user_id, project_id):
        # No role left there: the user's credentials for that project go (Keystone's rule).
        await _drop_app_creds(s, user_id, project_id)


async def list_assignments(
    s: AsyncSession,
    *,
    user_id: str | None = None,
    project_id: str | None = None,
    role: str | None = None,
) -> list[RoleAssignment]:
    q = select(RoleAssignment).order_by(
        RoleAssignment.project_id, RoleAssignment.user_id, RoleAssignment.role
    )
    if user_id is not None:
        q = q.where(RoleAssignment.user_id == user_id)
    if project_id is not None:
        q = q.where(RoleAssignment.project_id == project_id)
    if role is not None:
        q = q.where(RoleAssignment.role == role)
    return list((await s.execute(q)).scalars())
