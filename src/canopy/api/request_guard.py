"""What every request must be before a handler, a parser or the token check sees it:
framed one way, within its service's body limit, and valid Unicode text.

An ASGI middleware, so it holds for every route, present and future. It reads the body
itself, counting bytes as they arrive: a declared `Content-Length` over the limit is
refused before a byte of the body is read, and a chunked body is refused as soon as the
count passes the limit, never read whole. The answer is 413 (or 400 for bad text) in the
fault format of the service that owns the path. A body within the limit is handed on
unchanged, in one message.

A request that declares both a `Content-Length` and a `Transfer-Encoding` is refused
(400) and its connection closed after the answer: RFC 9112 (section 6.3) lets a server
refuse it and requires the connection closed either way, since a proxy in front that
framed the body by the other header would read what follows as another request
(smuggling). h11 frames it by the chunks and would go on reading the connection.

Limits (`[api]` in the config): `max_identity_body_bytes` under /identity, whose token
request anyone may send without a token; `max_body_bytes` everywhere else.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from canopy.api import valid_text
from canopy.api.errors import fault_response, is_json
from canopy.config import ApiSettings

IDENTITY_PREFIX = "/identity"

LimitFor = Callable[[str], int]
TWO_FRAMINGS = (
    "The request has both a Content-Length and a Transfer-Encoding header: send one of them."
)


class RequestGuard:
    """Refuses oversized bodies (413) and text that is not valid Unicode (400)."""

    def __init__(self, app: ASGIApp, limit_for: LimitFor) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
        problem = (
            valid_text.path_problem(scope.get("raw_path"), scope.get("path", ""))
            or valid_text.query_problem(scope.get("query_string", b""))
            or valid_text.header_problem(headers)
        )
        if problem is not None:
            await _refuse(scope, receive, send, 400, problem)
            return
        if _header(headers, b"transfer-encoding") is not None and (
            _header(headers, b"content-length") is not None
        ):
            await _refuse(scope, receive, send, 400, TWO_FRAMINGS, close=True)
            return
        limit = self.limit_for(scope.get("path", ""))
        declared = _content_length(headers)
        if declared is not None and declared > limit:
            await _refuse(scope, receive, send, 413, _too_large(limit), close=True)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before sending its body: nobody to answer
            body.extend(message.get("body", b""))
            if len(body) > limit:
                await _refuse(scope, receive, send, 413, _too_large(limit), close=True)
                return
            if not message.get("more_body", False):
                break
        if body and is_json(_content_type(headers), missing=True):
            problem = valid_text.json_problem(bytes(body))
            if problem is not None:
                await _refuse(scope, receive, send, 400, problem)
                return
        await self.app(scope, _replay(bytes(body), receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the body read already, then what the client sends next
    (its disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    value = _header(headers, b"content-length")
    if value is None or not value.strip().isdigit():
        return None  # the server has refused a malformed one already; the count still holds
    return int(value)


def _content_type(headers: list[tuple[bytes, bytes]]) -> str | None:
    value = _header(headers, b"content-type")
    return None if value is None else value.decode("latin-1")


def _too_large(limit: int) -> str:
    return f"The request body is too large: this service accepts at most {limit} bytes."


async def _refuse(
    scope: Scope, receive: Receive, send: Send, code: int, message: str, *, close: bool = False
) -> None:
    # The connection is closed after a refused body rather than reading the rest of it.
    headers = {"connection": "close"} if close else None
    response = fault_response(Request(scope), code, message, headers)
    await response(scope, receive, send)


def limits(settings: ApiSettings) -> LimitFor:
    """The body limit of a path: identity's, or the general one."""

    def limit_for(path: str) -> int:
        if path == IDENTITY_PREFIX or path.startswith(IDENTITY_PREFIX + "/"):
            return settings.max_identity_body_bytes
        return settings.max_body_bytes

    return limit_for


def install_request_guard(app: FastAPI, settings: ApiSettings) -> None:
    """Guard every route of `app`. Add it before the error handlers' own net, so that net
    (and the request id) wraps it."""
    app.add_middleware(RequestGuard, limit_for=limits(settings))
