"""Tokens (Keystone's model): issue, validate, revoke with everything made from them, purge.

Tokens are opaque random strings; only their SHA-256 is stored, so a database dump yields
no usable token. A token made from another (the `token` auth method, e.g. a rescope) names
its parent's audit id, and carries the audit id of the first token of its chain, which the
token body shows as the second entry of `audit_ids`, as Keystone's does.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.domain.errors import NotFound, Unauthorized
from canopy.services.identity import roles_on
from canopy.store.models import ApplicationCredential, Project, Token, User

AUTH_FAILED = "The request you have made requires authentication."
PURGE_BATCH = 1000  # rows deleted per statement, so a purge never holds a lock for long


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True, slots=True)
class AppCredRef:
    """The application credential a token was issued through (Keystone's token shows it)."""

    id: str
    name: str
    unrestricted: bool

    @classmethod
    def of(cls, cred: ApplicationCredential) -> AppCredRef:
        return cls(cred.id, cred.name, cred.unrestricted)


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
    audit_chain_id: str  # the first token's of the chain (this one's own audit id if first)
    issued_at: datetime
    expires_at: datetime
    app_cred: AppCredRef | None = None

    @property
    def audit_ids(self) -> list[str]:
        """Keystone's `audit_ids`: this token's, then its chain's if it was made from one."""
        if self.audit_chain_id == self.audit_id:
            return [self.audit_id]
        return [self.audit_id, self.audit_chain_id]


async def issue_token(
    s: AsyncSession,
    user: User,
    project: Project | None,
    now: datetime,
    ttl_seconds: float,
    *,
    methods: tuple[str, ...] = ("password",),
    parent: TokenInfo | None = None,
    app_cred: ApplicationCredential | None = None,
) -> tuple[str, TokenInfo]:
    """Issue a token for `user`, scoped to `project` (which the user must hold a role on).

    A token made from `parent` lives no longer than it (Keystone's rule) and joins its chain.
    One issued through `app_cred` has the credential's roles (those the user still holds)
    and lives no longer than the credential (CVE-2022-2447).
    """
    roles: list[str] = []
    if project is not None:
        if not project.enabled:
            raise Unauthorized(f"Project {project.id} is disabled.")
        roles = _narrowed(await roles_on(s, user.id, project.id), app_cred)
        if not roles:
            raise Unauthorized(f"User {user.id} has no access to project {project.id}.")
    value = secrets.token_urlsafe(32)
    expiry = parent.expires_at if parent else now + timedelta(seconds=ttl_seconds)
    if app_cred is not None and app_cred.expires_at is not None:
        expiry = min(expiry, app_cred.expires_at)
    audit_id = secrets.token_urlsafe(16)[:22]
    tok = Token(
        id=token_digest(value),
        user_id=user.id,
        project_id=project.id if project else None,
        roles=roles,
        methods=list(methods),
        audit_id=audit_id,
        parent_audit_id=parent.audit_id if parent else None,
        audit_chain_id=parent.audit_chain_id if parent else None,
        issued_at=now,
        expires_at=expiry,
        revoked=False,
        app_cred_id=app_cred.id if app_cred else None,
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
        audit_id=audit_id,
        audit_chain_id=parent.audit_chain_id if parent else audit_id,
        issued_at=now,
        expires_at=expiry,
        app_cred=AppCredRef.of(app_cred) if app_cred else None,
    )


def _narrowed(roles: list[str], app_cred: ApplicationCredential | None) -> list[str]:
    """The roles a token holds: the user's, narrowed to its credential's if it has one."""
    if app_cred is None:
        return roles
    allowed = set(app_cred.roles or ())
    return [r for r in roles if r in allowed]


async def validate_token(s: AsyncSession, value: str, now: datetime) -> TokenInfo:
    """The token's holder, or Unauthorized if it is unknown, revoked or expired."""
    if not value or len(value) > 512:
        raise Unauthorized(AUTH_FAILED)
    tok = await s.get(Token, token_digest(value))
    if tok is None or tok.revoked or tok.expires_at <= now:
        raise Unauthorized(AUTH_FAILED)
    user = await s.get(User, tok.user_id)
    if user is None or not user.enabled:
        raise Unauthorized(AUTH_FAILED)
    project = await s.get(Project, tok.project_id) if tok.project_id else None
    if tok.project_id and (project is None or not project.enabled):
        raise Unauthorized(AUTH_FAILED)
    cred: ApplicationCredential | None = None
    if tok.app_cred_id is not None:
        # Deleted or expired, the credential takes its tokens with it.
        cred = await s.get(ApplicationCredential, tok.app_cred_id)
        if cred is None or (cred.expires_at is not None and cred.expires_at <= now):
            raise Unauthorized(AUTH_FAILED)
    # Roles are read live, so a revoked role takes effect at once.
    roles = _narrowed(await roles_on(s, user.id, tok.project_id), cred) if tok.project_id else []
    if tok.project_id and not roles:
        raise Unauthorized(AUTH_FAILED)
    return TokenInfo(
        token_id=tok.id,
        user_id=user.id,
        user_name=user.name,
        project_id=tok.project_id,
        project_name=project.name if project else None,
        roles=tuple(roles),
        methods=tuple(tok.methods),
        audit_id=tok.audit_id,
        audit_chain_id=tok.audit_chain_id or tok.audit_id,
        issued_at=tok.issued_at,
        expires_at=tok.expires_at,
        app_cred=AppCredRef.of(cred) if cred else None,
    )


async def token_record(s: AsyncSession, value: str, now: datetime) -> TokenInfo:
    """Like `validate_token`, but a bad subject token is NotFound (Keystone's 404)."""
    try:
        return await validate_token(s, value, now)
    except Unauthorized:
        raise NotFound("Could not find token.") from None


async def revoke_token(s: AsyncSession, value: str) -> int:
    """Revoke the token and every token made from it, however deep; how many were revoked."""
    tok = await s.get(Token, token_digest(value))
    if tok is None:
        raise NotFound("Could not find token.")
    tok.revoked = True
    revoked = 1
    parents = [tok.audit_id]
    while parents:
        rows = (
            await s.execute(
                select(Token.id, Token.audit_id).where(
                    Token.parent_audit_id.in_(parents), Token.revoked.is_(False)
                )
            )
        ).all()
        if not rows:
            break
        await s.execute(
            update(Token).where(Token.id.in_([r.id for r in rows])).values(revoked=True),
            execution_options={"synchronize_session": False},
        )
        revoked += len(rows)
        parents = [r.audit_id for r in rows]
    return revoked


async def purge_expired(s: AsyncSession, now: datetime, *, limit: int = PURGE_BATCH) -> int:
    """Delete up to `limit` tokens that expired before `now`; how many were deleted.

    A token made from a purged one is never older-lived than it, so it goes too (or has).
    """
    ids = list(
        (await s.execute(select(Token.id).where(Token.expires_at <= now).limit(limit))).scalars()
    )
    if ids:
        await s.execute(
            delete(Token).where(Token.id.in_(ids)),
            execution_options={"synchronize_session": False},
        )
    return len(ids)
