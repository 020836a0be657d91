"""Blazar's error bodies.

Blazar has two: its Flask error handlers (an unknown path, a bad method) answer
`{"error": <code>, "error_message": "<text>"}`, which Canopy uses for every error under
/reservation; an error its manager raises (a BlazarException sent back over RPC) is
rendered by `render_error_message` as `{"error_code": <code>, "error_message": "<text>",
"error_name": <code>}`, which Canopy uses for the manager errors it reproduces exactly
(HostHavingServers). python-blazarclient shows `error_message` as the command's error
either way.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from canopy.api.errors import domain_status, safe_text
from canopy.reservations.host_occupants import HostHavingServers


def blazar_fault(code: int, message: str) -> dict[str, Any]:
    return {"error": code, "error_message": message}


def blazar_manager_fault(code: int, message: str) -> dict[str, Any]:
    """The body of a Blazar manager error (blazar/api/v1/utils.py render_error_message,
    whose error_name is the code again)."""
    return {"error_code": code, "error_message": message, "error_name": code}


async def on_manager_error(request: Request, exc: Exception) -> JSONResponse:
    """A manager error Canopy reproduces, in Blazar's body for it."""
    assert isinstance(exc, HostHavingServers)
    code = domain_status(exc)
    return JSONResponse(blazar_manager_fault(code, safe_text(str(exc))), status_code=code)
