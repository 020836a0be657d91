"""Every API error as an OpenStack fault body: `{"<faultName>": {"code": N, "message": ...}}`.

`install_error_handlers(app)` maps domain errors, Starlette's HTTP errors, request
validation errors and database trouble onto 4xx/5xx fault bodies, and turns anything
unexpected into a logged 500 (a 500 is a bug). Services whose fault body differs (Keystone's
`{"error": {...}}`) register their own formatter for their path prefix with
`add_fault_format`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from canopy.domain.errors import (
    CanopyError,
    CloudError,
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    QuotaError,
    Unauthorized,
    Unsupported,
)

log = logging.getLogger(__name__)

FaultFormatter = Callable[[int, str], dict[str, Any]]

# Nova's names (nova/api/openstack/wsgi.py); anything else is a computeFault.
FAULT_NAMES: dict[int, str] = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    406: "notAcceptable",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    429: "overLimit",
    501: "notImplemented",
    503: "serviceUnavailable",
}

# Friendlier words than the bare HTTP phrase Starlette puts in `detail`.
_DEFAULT_MESSAGES: dict[int, str] = {
    404: "The resource could not be found.",
    405: "The method is not allowed for this resource.",
    413: "The request body is too large.",
}

# Starlette's stock details, which differ from the http module's phrases in some versions.
_STOCK = frozenset({"Not Found", "Method Not Allowed", "Content Too Large"})

_INPUT_SHOWN = 80  # characters of a rejected value echoed back


def fault_name(code: int) -> str:
    return FAULT_NAMES.get(code, "computeFault")


def openstack_fault(code: int, message: str) -> dict[str, Any]:
    """The Nova/canopy fault body."""
    return {fault_name(code): {"code": code, "message": message}}


def add_fault_format(
    app: FastAPI, prefix: str, formatter: FaultFormatter, *, raised: FaultFormatter | None = None
) -> None:
    """Use `formatter` for errors on paths under `prefix` (the longest prefix wins), and
    `raised`, if given, for the errors a route raises (`fault_response(raised=True)`), for a
    service whose body for those differs from its framework's (Blazar's)."""
    formats: list[tuple[str, FaultFormatter, FaultFormatter]] = app.state.fault_formats
    formats.append((prefix.rstrip("/"), formatter, raised or formatter))
    formats.sort(key=lambda p: len(p[0]), reverse=True)


def fault_response(
    request: Request,
    code: int,
    message: str,
    headers: dict[str, str] | None = None,
    *,
    raised: bool = False,
) -> JSONResponse:
    """A fault body in the format of the service that owns the request's path.

    `raised`: the error came from the route's own work (a domain, validation or database
    error, or an unexpected exception), not from the framework around it (an unknown path,
    a method not served, a body that is not JSON, a refused token).
    The message may echo what the caller sent; whatever UTF-8 cannot encode (a lone
    surrogate) is shown as its escape, so the body always encodes."""
    path = request.url.path
    formats: list[tuple[str, FaultFormatter, FaultFormatter]] = getattr(
        request.app.state, "fault_formats", []
    )
    formatter: FaultFormatter = openstack_fault
    for prefix, framework_fmt, raised_fmt in formats:
        if path == prefix or path.startswith(prefix + "/"):
            formatter = raised_fmt if raised else framework_fmt
            break
    return JSONResponse(formatter(code, safe_text(message)), status_code=code, headers=headers)


def safe_text(text: str) -> str:
    """`text` with every character UTF-8 cannot encode written as a `\\uXXXX` escape."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def domain_status(exc: CanopyError) -> int:
    """The HTTP status of a domain error; subclasses before their bases."""
    from canopy.api.compute.microversion import BadVersion, VersionNotAcceptable

    if isinstance(exc, BadVersion):
        return 400
    if isinstance(exc, VersionNotAcceptable):
        return 406
    if isinstance(exc, InvalidRequest):
        return 400
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Conflict):
        return 409
    if isinstance(exc, QuotaError | Forbidden):
        return 403
    if isinstance(exc, Unauthorized):
        return 401
    if isinstance(exc, Unsupported):  # a CloudError: must come before it
        return 501
    if isinstance(exc, CloudError):
        return 503
    return 500


def validation_message(exc: RequestValidationError) -> str:
    """What was wrong with the request, naming each rejected field."""
    parts: list[str] = []
    for err in exc.errors():
        loc = tuple(err.get("loc", ()))
        where = str(loc[0]) if loc else ""
        field = ".".join(str(p) for p in loc[1:])
        kind = err.get("type", "")
        if kind == "json_invalid":
            detail = err.get("ctx", {}).get("error", "invalid JSON")
            pos = loc[1] if len(loc) > 1 else "?"
            parts.append(f"Malformed request body: {detail} (at character {pos}).")
            continue
        if where == "body" and not field:
            if kind == "missing":
                parts.append("The request body is missing; a JSON object is expected.")
            else:
                parts.append(f"The request body must be a JSON object: {err.get('msg', '')}.")
            continue
        noun = {"query": "query parameter", "path": "path parameter", "header": "header"}.get(
            where, "field/attribute"
        )
        msg = err.get("msg", "invalid value")
        if kind == "missing":
            parts.append(f"Missing {noun} {field}.")
        elif kind == "extra_forbidden":
            parts.append(f"Unknown {noun} {field}: it is not allowed here.")
        else:
            shown = _shown(err.get("input"))
            parts.append(f"Invalid input for {noun} {field}. Value: {shown}. {msg}.")
    return " ".join(parts) or "Invalid request."


def _shown(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else value
    if len(text) > _INPUT_SHOWN:
        text = text[:_INPUT_SHOWN] + "..."
    return text


def is_json(content_type: str | None, *, missing: bool = False) -> bool:
    """Whether a body of this Content-Type is JSON (`missing`: what no header means)."""
    if not content_type:
        return missing
    main = content_type.split(";", 1)[0].strip().lower()
    return main == "application/json" or (
        main.startswith("application/") and main.endswith("+json")
    )


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # FastAPI hands the raw bytes to validation when the body was not declared as JSON.
    raw = exc.body
    if isinstance(raw, bytes) and raw and not is_json(request.headers.get("content-type")):
        return fault_response(
            request, 415, "Unsupported Content-Type: the request body must be application/json."
        )
    unparsed = any(err.get("type") == "json_invalid" for err in exc.errors())
    return fault_response(request, 400, validation_message(exc), raised=not unparsed)


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = exc.status_code
    detail = _message(code, exc.detail if isinstance(exc.detail, str) else str(exc.detail))
    return fault_response(request, code, detail, dict(exc.headers or {}) or None)


def _message(code: int, detail: str) -> str:
    if code in _DEFAULT_MESSAGES and (detail in ("", _phrase(code)) or detail in _STOCK):
        return _DEFAULT_MESSAGES[code]
    return detail or _phrase(code) or "Error"


def _phrase(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return ""


async def _on_domain(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CanopyError)
    code = domain_status(exc)
    if code == 500:  # a CanopyError nobody mapped: a bug
        log.error("unmapped error on %s %s", request.method, request.url.path, exc_info=exc)
        return fault_response(request, 500, _GENERIC_500, raised=True)
    if code == 503:
        log.warning("%s %s: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
    # A refused token is the token check's, which answers in front of the service's code
    # (keystonemiddleware's place), not an error of the route's work.
    return fault_response(request, code, str(exc) or type(exc).__name__, raised=code != 401)


async def _on_database_down(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable on %s %s: %r", request.method, request.url.path, exc)
    return fault_response(
        request, 503, "The database is unavailable; try again shortly.", raised=True
    )


async def _on_integrity(request: Request, exc: Exception) -> JSONResponse:
    log.info("integrity error on %s %s: %s", request.method, request.url.path, exc)
    return fault_response(
        request, 409, "The request conflicts with an existing object.", raised=True
    )


async def _on_data(request: Request, exc: Exception) -> JSONResponse:
    log.info("data error on %s %s: %s", request.method, request.url.path, exc)
    return fault_response(
        request, 400, "A value in the request is not valid for its field.", raised=True
    )


async def _on_dbapi(request: Request, exc: Exception) -> JSONResponse:
    """A database error of no more specific kind: a value the database refused (SQLSTATE
    class 22, data exception, e.g. a NUL character PostgreSQL cannot store, which its
    driver does not report as a DataError) is the request's fault; anything else is a
    bug."""
    assert isinstance(exc, DBAPIError)
    sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    if isinstance(sqlstate, str) and sqlstate.startswith("22"):
        return await _on_data(request, exc)
    log.error("database error on %s %s", request.method, request.url.path, exc_info=exc)
    return fault_response(request, 500, _GENERIC_500, raised=True)


_GENERIC_500 = (
    "An unexpected error occurred; it has been logged. Please report it with the time of "
    "the request."
)


class _FaultGuard:
    """The last net: a plain-text error from Starlette's own machinery is rewritten as a
    fault body, and an exception no handler took becomes a logged 500 computeFault. (Body
    limits and bad text are refused inside it, by api/request_guard.py.)"""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False
        held: Message | None = None  # the start of a plain-text error, being rewritten
        text = bytearray()

        async def _send(message: Message) -> None:
            nonlocal started, held
            if message["type"] == "http.response.start":
                started = True
                if message["status"] >= 400 and _is_plain_text(message):
                    held = message
                    return
            elif held is not None and message["type"] == "http.response.body":
                text.extend(message.get("body", b"")[: 4096 - len(text)])
                if not message.get("more_body", False):
                    code = int(held["status"])
                    detail = _message(code, text.decode("utf-8", "replace").strip())
                    await fault_response(Request(scope), code, detail)(scope, receive, send)
                return
            await send(message)

        try:
            await self.app(scope, receive, _send)
        except Exception:
            log.exception("unexpected error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            response = fault_response(Request(scope), 500, _GENERIC_500, raised=True)
            await response(scope, receive, send)


def _is_plain_text(start: Message) -> bool:
    for key, value in start.get("headers", []):
        if key.lower() == b"content-type":
            return bytes(value).lower().startswith(b"text/plain")
    return False


def install_error_handlers(app: FastAPI) -> None:
    """Register the fault handlers (and the last-resort 500) on `app`. Call once, early."""
    if not hasattr(app.state, "fault_formats"):
        app.state.fault_formats = []
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(HTTPException, _on_http)
    app.add_exception_handler(CanopyError, _on_domain)
    for db_down in (OperationalError, InterfaceError, PoolTimeoutError, OSError):
        app.add_exception_handler(db_down, _on_database_down)
    app.add_exception_handler(IntegrityError, _on_integrity)
    app.add_exception_handler(DataError, _on_data)
    app.add_exception_handler(DBAPIError, _on_dbapi)
    app.add_middleware(_FaultGuard)
