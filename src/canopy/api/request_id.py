"""Every response names its request, as OpenStack services do (`x-openstack-request-id`).

The id is the caller's own `X-OpenStack-Request-ID` when it has the OpenStack form
(`req-` + a UUID), else a new one. It is what instance actions record as `request_id`, so
an operator can find the request behind an action from a client's log and back; compute
responses also carry it as `x-compute-request-id`, as Nova's do.
"""

from __future__ import annotations

import re
import uuid

from fastapi import FastAPI, Request
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "x-openstack-request-id"
_FORM = re.compile(r"^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def request_id(request: Request) -> str:
    """This request's id (set by the middleware; made here if it did not run)."""
    rid = getattr(request.state, "request_id", None)
    if rid is None:
        rid = request.state.request_id = _choose(request.headers.get(HEADER))
    return str(rid)


def _choose(given: str | None) -> str:
    if given is not None and _FORM.match(given.lower()):
        return given.lower()
    return f"req-{uuid.uuid4()}"


class _RequestId:
    """Pure ASGI (not BaseHTTPMiddleware): a client that goes away mid-request is not an
    error here, and nothing is buffered or copied on the way out."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(Request(scope))
        compute = scope["path"].startswith("/compute")

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers[HEADER] = rid
                if compute:
                    headers["x-compute-request-id"] = rid
            await send(message)

        await self.app(scope, receive, send_with_id)


def install_request_id(app: FastAPI) -> None:
    app.add_middleware(_RequestId)
