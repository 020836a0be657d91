"""What every Keystone resource shares: the fault body, the 401 challenge, the password
pool and throttle, timestamps and links. Who may do what is `canopy.api.auth`'s."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from canopy.api.deps import get_settings
from canopy.api.errors import add_fault_format, fault_response
from canopy.config import IdentitySettings, Settings
from canopy.domain.errors import InvalidRequest, RetryLater, Throttled
from canopy.services.identity import DEFAULT_DOMAIN
from canopy.services.passwords import PasswordPool
from canopy.services.throttle import ThrottlePolicy

T = TypeVar("T")

PREFIX = "/identity"
V3 = "/identity/v3"


def keystone_fault(code: int, message: str) -> dict[str, Any]:
    """Keystone's fault body: `{"error": {"code", "message", "title"}}`."""
    try:
        title = HTTPStatus(code).phrase
    except ValueError:
        title = "Error"
    return {"error": {"code": code, "message": message, "title": title}}


class _Challenge:
    """Adds Keystone's `WWW-Authenticate` header to every 401 under /identity, whichever
    layer raised it (a bad token, a bad password, the shared auth dependency)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path == PREFIX or path.startswith(PREFIX + "/")):
            await self.app(scope, receive, send)
            return

        async def _send(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 401:
                settings: Settings = scope["app"].state.settings
                value = f'Keystone uri="{settings.public_url}{PREFIX}"'
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k != b"www-authenticate"
                ]
                headers.append((b"www-authenticate", value.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, _send)


def install_identity(app: FastAPI) -> None:
    """Keystone's fault body and 401 challenge for everything under /identity, the pool
    passwords are checked in, and 429/503 with Retry-After for what must be retried later.
    Call after `install_error_handlers` (and after `app.state.settings` is set)."""
    add_fault_format(app, PREFIX, keystone_fault)
    identity: IdentitySettings = app.state.settings.identity
    app.state.passwords = PasswordPool(identity.password_threads, identity.password_queue)
    app.add_exception_handler(RetryLater, _on_retry_later)
    app.add_middleware(_Challenge)


# The password pool and its refusals ------------------------------------------------------


def get_passwords(request: Request) -> PasswordPool:
    pool: PasswordPool = request.app.state.passwords
    return pool


def get_throttle(request: Request) -> ThrottlePolicy:
    return ThrottlePolicy.from_settings(get_settings(request).identity)


def client_address(request: Request) -> str | None:
    """The caller's address: the connection's peer, or, when that peer is one of the
    proxies in `[api] forwarded_allow_ips`, the address its X-Forwarded-For names."""
    return request.client.host if request.client else None


async def _on_retry_later(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RetryLater)
    code = 429 if isinstance(exc, Throttled) else 503
    return fault_response(request, code, str(exc), {"Retry-After": str(exc.retry_after)})


PasswordsDep = Annotated[PasswordPool, Depends(get_passwords)]
ThrottleDep = Annotated[ThrottlePolicy, Depends(get_throttle)]


# Rendering ----------------------------------------------------------------------------


def iso(dt: datetime) -> str:
    """Keystone's timestamps: UTC, microseconds, a Z."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def v3_url(request: Request, path: str = "") -> str:
    return f"{get_settings(request).public_url}{V3}{path}"


def self_link(request: Request, path: str) -> dict[str, str]:
    return {"self": v3_url(request, path)}


def collection_links(request: Request, next_url: str | None = None) -> dict[str, str | None]:
    url = v3_url(request, request.url.path.removeprefix(V3))
    if request.url.query:
        url += "?" + request.url.query
    return {"self": url, "previous": None, "next": next_url}


def domain_ref() -> dict[str, str]:
    return {"id": DEFAULT_DOMAIN[0], "name": DEFAULT_DOMAIN[1]}


def flag(value: str | None, name: str) -> bool | None:
    """A boolean query parameter as Keystone reads it (absent = no filter)."""
    if value is None:
        return None
    low = value.strip().lower()
    if low in ("", "1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise InvalidRequest(
        f"Invalid input for query parameter {name}: {value[:40]!r} is not a boolean."
    )


def page(
    request: Request,
    items: list[T],
    key: Callable[[T], str],
    limit: int | None,
    marker: str | None,
) -> tuple[list[T], str | None]:
    """Marker pagination over `items` (already ordered by `key`): the page and its next link."""
    if marker:
        items = [i for i in items if key(i) > marker]
    if limit is None or limit <= 0 or len(items) <= limit:
        return items, None
    items = items[:limit]
    params = dict(request.query_params)
    params.update(limit=str(limit), marker=str(key(items[-1])))
    return items, v3_url(request, request.url.path.removeprefix(V3)) + "?" + urlencode(params)
