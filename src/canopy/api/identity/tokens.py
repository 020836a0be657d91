"""Tokens: `POST /v3/auth/tokens` (password, token or application_credential method;
project scope or none),
validate (GET/HEAD), revoke (DELETE), and the projects a token's user may scope to."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.api.auth import Holder, HolderDep, authorize, is_admin_project
from canopy.api.deps import ClockDep, DatabaseDep, ReadSessionDep, SessionDep, SettingsDep
from canopy.api.identity.catalog import build_catalog
from canopy.api.identity.common import (
    V3,
    PasswordsDep,
    ThrottleDep,
    client_address,
    collection_links,
    domain_ref,
    iso,
)
from canopy.api.identity.projects import project_view
from canopy.config import Settings
from canopy.domain.errors import Forbidden, InvalidRequest, NotFound, Unauthorized
from canopy.services import app_credentials, identity, tokens
from canopy.services.app_credentials import SECRET_MAX, Lookup, SecretCheck
from canopy.services.identity import ROLE_IDS
from canopy.services.login import PasswordCheck
from canopy.services.tokens import TokenInfo
from canopy.store.models import ApplicationCredential, Project, User

router = APIRouter(tags=["identity"])

TOKENS = V3 + "/auth/tokens"
_METHODS = ("password", "token", "application_credential")
_UNSUPPORTED_SCOPE = (
    "Canopy issues project-scoped and unscoped tokens only; {kind} scope is not supported. "
    "Ask for a project scope (e.g. --os-project-name) instead."
)


def token_body(info: TokenInfo, settings: Settings, *, catalog: bool) -> dict[str, Any]:
    """Keystone's token document."""
    token: dict[str, Any] = {
        "methods": list(info.methods),
        "user": {
            "id": info.user_id,
            "name": info.user_name,
            "domain": domain_ref(),
            "password_expires_at": None,
        },
        "audit_ids": info.audit_ids,
        "expires_at": iso(info.expires_at),
        "issued_at": iso(info.issued_at),
        "roles": [{"id": ROLE_IDS[r], "name": r} for r in info.roles],
        "is_domain": False,
    }
    if info.app_cred is not None:
        token["application_credential"] = {
            "id": info.app_cred.id,
            "name": info.app_cred.name,
            "restricted": not info.app_cred.unrestricted,
        }
    if info.project_id is not None:
        token["is_admin_project"] = is_admin_project(info, settings)
        token["project"] = {
            "id": info.project_id,
            "name": info.project_name,
            "domain": domain_ref(),
        }
    if catalog:
        token["catalog"] = build_catalog(settings, info.project_id, token=True)
    return {"token": token}


def _obj(parent: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = parent.get(key)
    if not isinstance(value, dict):
        raise InvalidRequest(
            f"Expecting to find {key} in {where}. The server could not comply "
            "with the request since it is either malformed or otherwise "
            "incorrect. The client is assumed to be in error."
        )
    return value


def _str(parent: dict[str, Any], key: str) -> str | None:
    value = parent.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"Invalid input for field '{key}': {value!r} is not a string.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequest(f"Invalid input for field '{key}': not valid Unicode text.") from None
    return value


def _domain(ref: dict[str, Any], what: str) -> None:
    """A name needs its domain (Keystone's rule); only Default exists."""
    dom = _obj(ref, "domain", what)
    did, dname = _str(dom, "id"), _str(dom, "name")
    if did is None and dname is None:
        raise InvalidRequest(f"Expecting to find id or name in domain of {what}.")
    identity.check_domain(did, dname)


async def _password_user(check: PasswordCheck, ident: dict[str, Any], address: str | None) -> User:
    user = _obj(_obj(ident, "password", "identity"), "user", "password")
    password = _str(user, "password")
    if password is None:
        raise InvalidRequest("Expecting to find password in user.")
    uid, name = _str(user, "id"), _str(user, "name")
    if uid is None:
        if name is None:
            raise InvalidRequest("Expecting to find id or name in user.")
        _domain(user, "user")
    return await check.user(password, user_id=uid, name=name, address=address)


def _app_cred_lookup(ident: dict[str, Any]) -> tuple[Lookup, str]:
    """How the request names its application credential, and the secret it gives."""
    ref = _obj(ident, "application_credential", "identity")
    secret = _str(ref, "secret")
    if not secret:
        raise InvalidRequest("Expecting to find secret in application_credential.")
    if len(secret) > SECRET_MAX:
        raise InvalidRequest(f"Invalid input for field 'secret': longer than {SECRET_MAX}.")
    cred_id, name = _str(ref, "id"), _str(ref, "name")
    if cred_id:
        # The credential names its user; a user given beside it is ignored (LP#2148477).
        return Lookup(cred_id, None, None, None), secret
    if not name:
        raise InvalidRequest("Expecting to find id or name in application_credential.")
    user = _obj(ref, "user", "application_credential")
    uid, uname = _str(user, "id"), _str(user, "name")
    if uid is None:
        if uname is None:
            raise InvalidRequest("Expecting to find id or name in user.")
        _domain(user, "user")
    return Lookup(None, name, uid, uname), secret


async def _scope(s: AsyncSession, auth: dict[str, Any], user: User) -> Project | None:
    scope = auth.get("scope")
    if scope is None:
        return await identity.default_scope(s, user)
    if scope == "unscoped":
        return None
    if not isinstance(scope, dict):
        raise InvalidRequest("Invalid input for field 'scope': expected an object.")
    for kind in ("domain", "system", "OS-TRUST:trust"):
        if kind in scope:
            raise Unauthorized(_UNSUPPORTED_SCOPE.format(kind=kind.split(":")[-1]))
    ref = _obj(scope, "project", "scope")
    pid, name = _str(ref, "id"), _str(ref, "name")
    if pid is None:
        if name is None:
            raise InvalidRequest("Expecting to find id or name in project.")
        _domain(ref, "project")
    try:
        return await identity.find_project(s, id=pid, name=name)
    except NotFound as e:
        raise Unauthorized(str(e)) from None


@router.post(TOKENS, status_code=201)
async def issue(
    request: Request,
    body: Annotated[dict[str, Any], Body()],
    db: DatabaseDep,
    settings: SettingsDep,
    clock: ClockDep,
    passwords: PasswordsDep,
    policy: ThrottleDep,
) -> JSONResponse:
    """Authenticate (password or token) and issue a token for the requested scope."""
    auth = _obj(body, "auth", "request body")
    ident = _obj(auth, "identity", "auth")
    methods = ident.get("methods")
    if not isinstance(methods, list) or not methods or not all(isinstance(m, str) for m in methods):
        raise InvalidRequest("Expecting to find methods in identity: a non-empty list.")
    unsupported = [m for m in methods if m not in _METHODS]
    if unsupported:
        raise Unauthorized(
            f"Attempted to authenticate with an unsupported method: {unsupported[0][:40]}."
        )
    now = clock.now()
    user: User | None = None
    parent: TokenInfo | None = None
    cred: ApplicationCredential | None = None
    if "application_credential" in methods:
        if len(set(methods)) > 1:
            raise Unauthorized(
                "Error authenticating with application credential: it cannot be combined "
                "with another method."
            )
        if "scope" in auth:
            raise Unauthorized(
                "Error authenticating with application credential: Application credentials "
                "cannot request a scope."
            )
        lookup, secret = _app_cred_lookup(ident)
        check_secret = SecretCheck(db, passwords, policy)
        cred, user = await check_secret.credential(lookup, secret, now, client_address(request))
    if "token" in methods:
        value = _str(_obj(ident, "token", "identity"), "id")
        if not value:
            raise InvalidRequest("Expecting to find id in token.")
        async with db.read() as s:
            parent = await tokens.validate_token(s, value, now)
            user = await identity.find_user(s, id=parent.user_id)
            if parent.app_cred is not None:
                # Keystone's rule: a token made from one issued through an application
                # credential keeps its credential (its roles, its project).
                if "scope" in auth:
                    raise Forbidden(
                        "You are not authorized to perform the requested action: Using an "
                        "application credential token to create a scoped token is not "
                        "allowed."
                    )
                cred = await app_credentials.get(s, parent.app_cred.id)
                if cred is None:
                    raise Unauthorized(tokens.AUTH_FAILED)
    if "password" in methods:
        # Throttled, and checked in the password pool with no transaction open.
        check = PasswordCheck(db, passwords, policy, clock)
        by_password = await _password_user(check, ident, client_address(request))
        if user is not None and by_password.id != user.id:
            raise Unauthorized("The methods given authenticate different users.")
        user = by_password
    assert user is not None
    async with db.read() as s:
        if cred is not None:
            project = await s.get(Project, cred.project_id)
            if project is None:
                raise Unauthorized(tokens.AUTH_FAILED)
        else:
            project = await _scope(s, auth, user)
    all_methods = tuple(dict.fromkeys([*methods, *(parent.methods if parent else ())]))
    async with db.session() as s:
        value, info = await tokens.issue_token(
            s,
            user,
            project,
            now,
            settings.identity.token_ttl_seconds,
            methods=all_methods,
            parent=parent,
            app_cred=cred,
        )
    catalog = "nocatalog" not in request.query_params
    doc = token_body(info, settings, catalog=catalog)
    return JSONResponse(doc, status_code=201, headers={"X-Subject-Token": value})


async def _subject(request: Request, s: AsyncSession, holder: Holder, now: datetime) -> TokenInfo:
    value = request.headers.get("x-subject-token")
    if not value:
        raise InvalidRequest("Missing header X-Subject-Token: the token to look at.")
    subject = await tokens.token_record(s, value, now)
    authorize(holder, "validate_token", allowed=subject.user_id == holder.user_id)
    return subject


@router.get(TOKENS)
async def validate(
    request: Request, holder: HolderDep, s: ReadSessionDep, settings: SettingsDep, clock: ClockDep
) -> JSONResponse:
    """The subject token's document (404 if it is unknown, expired or revoked)."""
    subject = await _subject(request, s, holder, clock.now())
    catalog = "nocatalog" not in request.query_params
    headers = {"X-Subject-Token": request.headers["x-subject-token"]}
    return JSONResponse(token_body(subject, settings, catalog=catalog), headers=headers)


@router.head(TOKENS, status_code=200)
async def check(
    request: Request, holder: HolderDep, s: ReadSessionDep, clock: ClockDep
) -> Response:
    """200 if the subject token is valid, else 404."""
    await _subject(request, s, holder, clock.now())
    return Response(
        status_code=200, headers={"X-Subject-Token": request.headers["x-subject-token"]}
    )


@router.delete(TOKENS, status_code=204)
async def revoke(request: Request, holder: HolderDep, s: SessionDep, clock: ClockDep) -> Response:
    """Revoke the subject token and every token made from it (a rescope of it, ...)."""
    await _subject(request, s, holder, clock.now())
    await tokens.revoke_token(s, request.headers["x-subject-token"])
    return Response(status_code=204)


@router.get(V3 + "/auth/projects")
async def auth_projects(request: Request, holder: HolderDep, s: ReadSessionDep) -> dict[str, Any]:
    """The enabled projects the token's user may scope a token to."""
    projects = await identity.user_projects(s, holder.user_id)
    return {
        "projects": [project_view(request, p) for p in projects if p.enabled],
        "links": collection_links(request),
    }


@router.get(V3 + "/auth/domains")
async def auth_domains(request: Request, holder: HolderDep) -> dict[str, Any]:
    """No domain-scoped tokens in canopy: always empty."""
    return {"domains": [], "links": collection_links(request)}


@router.get(V3 + "/auth/system")
async def auth_system(request: Request, holder: HolderDep) -> dict[str, Any]:
    """No system-scoped tokens in canopy: always empty."""
    return {"system": [], "links": collection_links(request)}
