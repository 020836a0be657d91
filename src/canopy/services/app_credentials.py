"""Application credentials (Keystone's): create, find, list, delete, and authenticate.

A credential belongs to one user and names one project (the project of the token it was
created with) and a subset of the user's roles there. Its secret is shown once, at
create; only its Argon2id hash is stored, made and checked in the password pool (never on
the event loop, never inside a transaction). A token issued through it is scoped to its
project with its roles, as far as the user still holds them, and dies with it.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.domain.errors import Conflict, Forbidden, InvalidRequest, NotFound, Unauthorized
from canopy.services import throttle
from canopy.services.identity import AUTH_FAILED, roles_on
from canopy.services.passwords import UNUSABLE, PasswordHash, PasswordPool
from canopy.services.throttle import LoginKeys, ThrottlePolicy
from canopy.store.db import Database
from canopy.store.models import ApplicationCredential, User

SECRET_MAX = 4096  # characters: what a password may be
NAME_MAX = 255
RESTRICTED = (
    "Using method 'application_credential' is not allowed for managing additional "
    "application credentials."
)


def generate_secret() -> str:
    """A new secret: 64 random bytes, URL-safe base64 without padding (Keystone's form)."""
    return secrets.token_urlsafe(64)


def not_found(cred_id: str) -> NotFound:
    return NotFound(f"Could not find Application Credential: {cred_id[:64]}.")


@dataclass(frozen=True, slots=True)
class NewCredential:
    """What a create asks for, checked: the secret already hashed."""

    name: str
    description: str | None
    secret_hash: PasswordHash
    roles: tuple[str, ...] | None  # None: every role of the creating token
    unrestricted: bool
    expires_at: datetime | None


async def create(
    s: AsyncSession,
    user_id: str,
    project_id: str,
    token_roles: tuple[str, ...],
    want: NewCredential,
    now: datetime,
) -> ApplicationCredential:
    """Store a credential for `user_id` on `project_id`. Its roles must be among those of
    the token that creates it (which the user holds there now); none given: all of them."""
    if want.expires_at is not None and want.expires_at <= now:
        raise InvalidRequest("Invalid application credential: the expiration time is in the past.")
    roles = list(token_roles) if want.roles is None else sorted(set(want.roles))
    if not roles:
        raise InvalidRequest("Invalid application credential: it needs at least one role.")
    held = set(await roles_on(s, user_id, project_id))
    if not set(roles) <= set(token_roles) or not set(roles) <= held:
        raise InvalidRequest(
            "Invalid application credential: Cannot create an application credential "
            "with unassigned role"
        )
    taken = await s.execute(
        select(ApplicationCredential.id).where(
            ApplicationCredential.user_id == user_id, ApplicationCredential.name == want.name
        )
    )
    if taken.first() is not None:
        raise Conflict(
            "Conflict occurred attempting to store application_credential - "
            f"duplicate name {want.name}."
        )
    cred = ApplicationCredential(
        id=uuid.uuid4().hex,
        user_id=user_id,
        project_id=project_id,
        name=want.name,
        description=want.description,
        secret_hash=want.secret_hash,
        roles=roles,
        unrestricted=want.unrestricted,
        expires_at=want.expires_at,
        created_at=now,
    )
    s.add(cred)
    await s.flush()
    return cred


async def get(s: AsyncSession, cred_id: str) -> ApplicationCredential | None:
    if not cred_id or len(cred_id) > 64:
        return None
    return await s.get(ApplicationCredential, cred_id)


async def owned(s: AsyncSession, user_id: str, cred_id: str) -> ApplicationCredential:
    """The credential `cred_id` of `user_id`; another user's, or none, is NotFound (the
    owner comes from the credential, never from the path: Keystone's LP#1750415)."""
    cred = await get(s, cred_id)
    if cred is None or cred.user_id != user_id:
        raise not_found(cred_id)
    return cred


async def list_for(
    s: AsyncSession, user_id: str, *, name: str | None = None
) -> list[ApplicationCredential]:
    q = (
        select(ApplicationCredential)
        .where(ApplicationCredential.user_id == user_id)
        .order_by(ApplicationCredential.id)
    )
    if name is not None:
        q = q.where(ApplicationCredential.name == name)
    return list((await s.execute(q)).scalars())


async def remove(s: AsyncSession, cred: ApplicationCredential) -> None:
    await s.delete(cred)
    await s.flush()


def check_may_manage(app_cred_unrestricted: bool | None) -> None:
    """A token issued through a restricted credential may not create or delete
    credentials (`None`: the token came from no credential)."""
    if app_cred_unrestricted is False:
        raise Forbidden(f"You are not authorized to perform the requested action: {RESTRICTED}")


# Authentication -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Lookup:
    """How a request names a credential: its id, or its name and its user's id or name."""

    cred_id: str | None
    name: str | None
    user_id: str | None
    user_name: str | None

    @property
    def ref(self) -> str:
        """What the throttle counts failures against when the credential is unknown."""
        if self.cred_id:
            return f"app-cred:{self.cred_id}"
        return f"app-cred:{self.user_id or self.user_name}:{self.name}"


@dataclass(frozen=True, slots=True)
class SecretCheck:
    """Checking a credential's secret: throttled like a login, in the password pool."""

    db: Database
    pool: PasswordPool
    policy: ThrottlePolicy

    async def credential(
        self, lookup: Lookup, secret: str, now: datetime, address: str | None
    ) -> tuple[ApplicationCredential, User]:
        """The live credential the secret opens, and its enabled user; else Unauthorized
        (never which part failed: unknown, wrong secret, expired, user disabled)."""
        async with self.db.read() as s:
            cred = await self._find(s, lookup)
            user = await s.get(User, cred.user_id) if cred is not None else None
            keys = LoginKeys.of(f"app-cred:{cred.id}" if cred else lookup.ref, address)
            await throttle.check(s, self.policy, keys, now)
        ok = await self.pool.verify(cred.secret_hash if cred else UNUSABLE, secret)
        live = cred is not None and (cred.expires_at is None or cred.expires_at > now)
        if not ok or not live or user is None or not user.enabled:
            async with self.db.session() as s:
                await throttle.record_failure(s, self.policy, keys, now)
            raise Unauthorized(AUTH_FAILED)
        assert cred is not None
        async with self.db.session() as s:
            if await throttle.has_failures(s, keys):
                await throttle.forget_user(s, keys)
        return cred, user

    @staticmethod
    async def _find(s: AsyncSession, lookup: Lookup) -> ApplicationCredential | None:
        if lookup.cred_id:
            return await get(s, lookup.cred_id)
        user_id = lookup.user_id
        if user_id is None:
            row = await s.execute(select(User.id).where(User.name == lookup.user_name))
            user_id = row.scalar_one_or_none()
            if user_id is None:
                return None
        found = await list_for(s, user_id, name=lookup.name)
        return found[0] if len(found) == 1 else None
