"""Application credentials: `/v3/users/{user_id}/application_credentials` (Keystone's).

A user creates theirs with a project-scoped token: the credential is for that project, with
the roles asked for (each one the token holds) or all of the token's. The secret, given or
generated, is in the create's answer only. The user lists, shows and deletes theirs; a
cloud admin may list, show and delete anyone's (Keystone's admin may too), but creates
none for another user. A token issued through a restricted credential (the default) may
not create or delete credentials. Access rules are not supported: asking for one is a 400.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from canopy.api.auth import Holder, HolderDep, self_rule
from canopy.api.deps import ClockDep, DatabaseDep, ReadSessionDep, SessionDep
from canopy.api.identity.common import PasswordsDep, collection_links, self_link
from canopy.api.identity.users import USERS
from canopy.domain.errors import Forbidden, InvalidRequest
from canopy.services import app_credentials as creds
from canopy.services import identity
from canopy.services.app_credentials import NAME_MAX, SECRET_MAX, NewCredential
from canopy.services.identity import ROLE_IDS, ROLES
from canopy.store.models import ApplicationCredential

router = APIRouter(tags=["identity"])

APP_CREDS = USERS + "/{user_id}/application_credentials"
DESCRIPTION_MAX = 65535


def _when(dt: datetime | None) -> str | None:
    """Keystone shows a credential's expiry with microseconds and no zone suffix."""
    return None if dt is None else dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def cred_view(request: Request, c: ApplicationCredential) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "description": c.description,
        "user_id": c.user_id,
        "project_id": c.project_id,
        "roles": [
            {"id": ROLE_IDS[r], "name": r, "domain_id": None} for r in c.roles if r in ROLE_IDS
        ],
        "expires_at": _when(c.expires_at),
        "unrestricted": bool(c.unrestricted),
        "system": None,
        "access_rules": [],
        "links": self_link(request, f"/users/{c.user_id}/application_credentials/{c.id}"),
    }


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RoleRef(_In):
    id: str | None = Field(default=None, max_length=64)
    name: str | None = Field(default=None, max_length=255)

    def role(self) -> str:
        if (self.id is None) == (self.name is None):
            raise InvalidRequest(
                "Invalid input for field 'roles': each role is given by its id or its name."
            )
        if self.id is not None:
            return identity.role_by_id(self.id)
        if self.name not in ROLES:
            raise InvalidRequest(f"Invalid application credential: no role named {self.name}.")
        return self.name


class CredCreate(_In):
    name: str = Field(min_length=1, max_length=NAME_MAX)
    secret: str | None = Field(default=None, max_length=SECRET_MAX)
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX)
    expires_at: datetime | None = None
    roles: list[RoleRef] | None = Field(default=None, max_length=len(ROLES) * 4)
    unrestricted: bool | None = None
    access_rules: list[dict[str, Any]] | None = Field(default=None, max_length=64)
    # Keystone's schema accepts these; it sets them itself from the token.
    id: str | None = Field(default=None, max_length=64)
    project_id: str | None = Field(default=None, max_length=64)
    system: str | None = Field(default=None, max_length=64)

    @field_validator("expires_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        # Keystone reads an expiry without a zone as UTC.
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        try:
            return value.astimezone(UTC)  # 9999-12-31T23:59-01:00 is past year 9999 in UTC
        except OverflowError:
            raise ValueError("expires_at is out of range") from None


class CredCreateBody(_In):
    application_credential: CredCreate


def _project_token(holder: Holder) -> tuple[str, tuple[str, ...]]:
    if holder.project_id is None:
        raise InvalidRequest(
            "Invalid application credential: create it with a project-scoped token; it is "
            "for that token's project."
        )
    return holder.project_id, holder.token.roles


def _may_manage(holder: Holder) -> None:
    unrestricted = holder.token.app_cred.unrestricted if holder.token.app_cred else None
    creds.check_may_manage(unrestricted)


@router.post(APP_CREDS, status_code=201)
async def create_app_cred(
    request: Request,
    user_id: str,
    body: CredCreateBody,
    holder: HolderDep,
    db: DatabaseDep,
    clock: ClockDep,
    passwords: PasswordsDep,
) -> dict[str, Any]:
    """Create a credential for the caller's project; its secret is shown this once."""
    if user_id != holder.user_id:  # a cloud admin included (Keystone's rule)
        raise Forbidden(
            "You are not authorized to perform the requested action: Cannot create an "
            "application credential for another user."
        )
    _may_manage(holder)
    want = body.application_credential
    if want.access_rules:
        raise InvalidRequest(
            "Invalid application credential: access rules are not supported by Canopy; "
            "narrow the credential with its roles instead."
        )
    if want.system is not None:
        raise InvalidRequest("Invalid application credential: system scope is not supported.")
    project_id, token_roles = _project_token(holder)
    roles = None if not want.roles else tuple(r.role() for r in want.roles)
    secret = want.secret or creds.generate_secret()
    # Hashed before the transaction opens: Argon2 never holds the write lock.
    secret_hash = await passwords.hash(secret)
    new = NewCredential(
        name=want.name,
        description=want.description,
        secret_hash=secret_hash,
        roles=roles,
        unrestricted=bool(want.unrestricted),
        expires_at=want.expires_at,
    )
    async with db.session() as s:
        c = await creds.create(s, user_id, project_id, token_roles, new, clock.now())
    return {"application_credential": {**cred_view(request, c), "secret": secret}}


@router.get(APP_CREDS, dependencies=[Depends(self_rule("list_application_credentials"))])
async def list_app_creds(
    request: Request, user_id: str, s: ReadSessionDep, name: str | None = None
) -> dict[str, Any]:
    """A user's credentials (never their secrets), filtered by name."""
    await identity.find_user(s, id=user_id)
    found = await creds.list_for(s, user_id, name=name)
    return {
        "application_credentials": [cred_view(request, c) for c in found],
        "links": collection_links(request),
    }


@router.get(
    APP_CREDS + "/{application_credential_id}",
    dependencies=[Depends(self_rule("get_application_credential"))],
)
async def show_app_cred(
    request: Request, user_id: str, application_credential_id: str, s: ReadSessionDep
) -> dict[str, Any]:
    """One credential of the user (another user's is not found here)."""
    c = await creds.owned(s, user_id, application_credential_id)
    return {"application_credential": cred_view(request, c)}


@router.delete(
    APP_CREDS + "/{application_credential_id}",
    status_code=204,
    dependencies=[Depends(self_rule("delete_application_credential"))],
)
async def delete_app_cred(
    user_id: str, application_credential_id: str, holder: HolderDep, s: SessionDep
) -> Response:
    """Delete a credential; every token issued through it stops working at once."""
    _may_manage(holder)
    await creds.remove(s, await creds.owned(s, user_id, application_credential_id))
    return Response(status_code=204)
