"""Every response names its request, as OpenStack services do (`x-openstack-request-id`).

The id is the caller's own `X-OpenStack-Request-ID` when it has the OpenStack form
(`req-` + a UUID), else a new one. It is what instance actions record as `request_id`, so
an operator can find the request behind an action from a client's log and back; compute
responses also carry it as `x-compute-request-id`, as Nova's do.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response

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


def install_request_id(app: FastAPI) -> None:
    @app.middleware("http")
    async def _request_id(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        rid = request_id(request)
        response = await call_next(request)
        response.headers[HEADER] = rid
        if request.url.path.startswith("/compute"):
            response.headers["x-compute-request-id"] = rid
        return response
