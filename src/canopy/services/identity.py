"""Identity: projects, users, role assignments, passwords and tokens (Keystone's model).

Passwords are Argon2id hashes. Tokens are opaque random strings; only their SHA-256 is
stored, so a database dump yields no usable token.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.domain.errors import Conflict, InvalidRequest, NotFound, Unauthorized
from canopy.store.models import Project, RoleAssignment, Server, Token, User

ROLES = ("admin", "member", "reader")
# Stable role ids, so `openstack role list` shows the same ids everywhere.
ROLE_IDS = {r: uuid.uuid5(uuid.NAMESPACE_URL, f"canopy:role:{r}").hex for r in ROLES}
DEFAULT_DOMAIN = ("default", "Default")

# OWASP's Argon2id floor (19 MiB, 2 passes): memory-hard, ~20-40 ms per check here.
_hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What a valid token says about its holder."""

    token_id: str
    user_id: str
    user_name: str
    project_id: str | None
    project_name: str | None
    roles: tuple[str, ...]
    methods: tuple[str, ...]
    audit_id: str
    issued_at: datetime
    expires_at: datetime


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
    password: str,
    now: datetime,
    *,
    default_project_id: str | None = None,
    email: str | None = None,
    description: str = "",
    enabled: bool = True,
) -> User:
    if not name or len(name) > 255:
        raise InvalidRequest("a user name must be 1 to 255 characters")
    if not password:
        raise InvalidRequest("a password is required")
    exists = (await s.execute(select(User).where(User.name == name))).scalar_one_or_none()
    if exists is not None:
        raise Conflict(f"Conflict occurred attempting to store user - duplicate name {name}.")
    u = User(
        id=uuid.uuid4().hex,
        name=name,
        domain_id="default",
        password_hash=hash_password(password),
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


async def issue_token(
    s: AsyncSession,
    user: User,
    project: Project | None,
    now: datetime,
    ttl_seconds: float,
    *,
    methods: tuple[str, ...] = ("password",),
    expires_at: datetime | None = None,
    audit_id: str | None = None,
) -> tuple[str, TokenInfo]:
    """Issue a token for `user`, scoped to `project` (which the user must hold a role on)."""
    roles: list[str] = []
    if project is not None:
        if not project.enabled:
            raise Unauthorized(f"Project {project.id} is disabled.")
        roles = await roles_on(s, user.id, project.id)
        if not roles:
            raise Unauthorized(f"User {user.id} has no access to project {project.id}.")
    value = secrets.token_urlsafe(32)
    expiry = expires_at or now + timedelta(seconds=ttl_seconds)
    tok = Token(
        id=token_digest(value),
        user_id=user.id,
        project_id=project.id if project else None,
        roles=roles,
        methods=list(methods),
        audit_id=audit_id or secrets.token_urlsafe(16)[:22],
        issued_at=now,
        expires_at=expiry,
        revoked=False,
    )
    s.add(tok)
    return value, TokenInfo(
        token_id=tok.id,
        user_id=user.id,
        user_name=user.name,
        project_id=project.id if project else None,
        project_name=project.name if project else None,
        roles=tuple(roles),
        methods=tuple(methods),
        audit_id=tok.audit_id,
        issued_at=now,
        expires_at=expiry,
    )


async def validate_token(s: AsyncSession, value: str, now: datetime) -> TokenInfo:
    """The token's holder, or Unauthorized if it is unknown, revoked or expired."""
    if not value or len(value) > 512:
        raise Unauthorized("The request you have made requires authentication.")
    tok = await s.get(Token, token_digest(value))
    if tok is None or tok.revoked or tok.expires_at <= now:
        raise Unauthorized("The request you have made requires authentication.")
    user = await s.get(User, tok.user_id)
    if user is None or not user.enabled:
        raise Unauthorized("The request you have made requires authentication.")
    project = await s.get(Project, tok.project_id) if tok.project_id else None
    if tok.project_id and (project is None or not project.enabled):
        raise Unauthorized("The request you have made requires authentication.")
    # Roles are read live, so a revoked role takes effect at once.
    roles = await roles_on(s, user.id, tok.project_id) if tok.project_id else []
    if tok.project_id and not roles:
        raise Unauthorized("The request you have made requires authentication.")
    return TokenInfo(
        token_id=tok.id,
        user_id=user.id,
        user_name=user.name,
        project_id=tok.project_id,
        project_name=project.name if project else None,
        roles=tuple(roles),
        methods=tuple(tok.methods),
        audit_id=tok.audit_id,
        issued_at=tok.issued_at,
        expires_at=tok.expires_at,
    )


async def revoke_token(s: AsyncSession, value: str) -> None:
    tok = await s.get(Token, token_digest(value))
    if tok is None:
        raise NotFound("Could not find token.")
    tok.revoked = True


# Authentication -----------------------------------------------------------------------

_AUTH_FAILED = "The request you have made requires authentication."


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so an unknown name costs as much time
    as a wrong password and the two cannot be told apart."""
    return hash_password(secrets.token_urlsafe(16))


def check_domain(domain_id: str | None = None, domain_name: str | None = None) -> None:
    """Only domain Default exists: any other domain id or name is Unauthorized."""
    if domain_id is not None and domain_id != DEFAULT_DOMAIN[0]:
        raise Unauthorized(_AUTH_FAILED)
    if domain_name is not None and domain_name != DEFAULT_DOMAIN[1]:
        raise Unauthorized(_AUTH_FAILED)


async def authenticate_password(
    s: AsyncSession, password: str, *, user_id: str | None = None, name: str | None = None
) -> User:
    """The enabled user whose password this is, or Unauthorized (never which part failed)."""
    user: User | None = None
    if user_id:
        user = await s.get(User, user_id)
    elif name:
        user = (await s.execute(select(User).where(User.name == name))).scalar_one_or_none()
    # Argon2 is memory-hard on purpose (~30 ms): off the event loop, so other requests run.
    stored = user.password_hash if user else _dummy_hash()
    ok = await asyncio.to_thread(verify_password, stored, password)
    if user is None or not ok or not user.enabled:
        raise Unauthorized(_AUTH_FAILED)
    return user


async def default_scope(s: AsyncSession, user: User) -> Project | None:
    """Keystone's rule for a request without a scope: the user's default project, if it is
    enabled and the user holds a role on it; else no project (an unscoped token)."""
    if not user.default_project_id:
        return None
    p = await s.get(Project, user.default_project_id)
    if p is None or not p.enabled or not await roles_on(s, user.id, p.id):
        return None
    return p


async def token_record(s: AsyncSession, value: str, now: datetime) -> TokenInfo:
    """Like `validate_token`, but a bad subject token is NotFound (Keystone's 404)."""
    try:
        return await validate_token(s, value, now)
    except Unauthorized:
        raise NotFound("Could not find token.") from None


async def revoke_user_tokens(s: AsyncSession, user_id: str) -> None:
    """Revoke every token of `user_id` (after a password change)."""
    await s.execute(update(Token).where(Token.user_id == user_id).values(revoked=True))


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
    await s.execute(update(Token).where(Token.project_id == p.id).values(revoked=True))
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
    password: str | None = None,
    email: str | None = None,
    description: str | None = None,
    default_project_id: str | None = None,
    enabled: bool | None = None,
) -> User:
    """Change `u`; a new password revokes every token the user holds (as Keystone does)."""
    if name is not None and name != u.name:
        if not name or len(name) > 255:
            raise InvalidRequest("a user name must be 1 to 255 characters")
        taken = (await s.execute(select(User.id).where(User.name == name))).first()
        if taken is not None:
            raise Conflict(f"Conflict occurred attempting to store user - duplicate name {name}.")
        u.name = name
    if password is not None:
        if not password:
            raise InvalidRequest("a password must not be empty")
        u.password_hash = hash_password(password)
        await revoke_user_tokens(s, u.id)
    if email is not None:
        u.email = email or None
    if description is not None:
        u.description = description
    if default_project_id is not None:
        u.default_project_id = default_project_id or None
    if enabled is not None:
        u.enabled = enabled
    await s.flush()
    return u


async def delete_user(s: AsyncSession, u: User) -> None:
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
    await s.delete(a)
    await s.flush()


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
