"""Blazar's two error bodies, and which error gets which (blazar/api/v1/app.py, utils.py).

- **Flask's** (`make_json_error`, registered for every HTTP error code): what the framework
  around Blazar's routes answers, an unknown path, a method not served, a body that cannot
  be read: `{"error": <code>, "error_message": "<text>"}`. Canopy gives it for the same
  cases (an unknown path or method, a body that is not JSON, bad text, a body over the
  limit, an unsupported Content-Type) and for a refused token.
- **Blazar's own** (`render_error_message`): every error of a route's work, a
  BlazarException raised in the API or sent back by the manager (not found, invalid input,
  conflicts, policy): `{"error_code": <code>, "error_message": "<text>",
  "error_name": <code>}`, error_name being the code again; an unexpected exception is
  `internal_error`'s 500 with error_name "INTERNAL_SERVER_ERROR". Canopy gives it for its
  domain, validation and database errors and for the unexpected 500.

error_code is always the HTTP status. python-blazarclient reads `error_message` from
either body.
"""

from __future__ import annotations

from typing import Any

INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"


def blazar_fault(code: int, message: str) -> dict[str, Any]:
    """Flask's body (make_json_error)."""
    return {"error": code, "error_message": message}


def blazar_api_fault(code: int, message: str) -> dict[str, Any]:
    """Blazar's body for an error of a route's work (render_error_message). Canopy's only
    500 is an unexpected one (a bug), which is Blazar's internal_error."""
    name: int | str = INTERNAL_SERVER_ERROR if code == 500 else code
    return {"error_code": code, "error_message": message, "error_name": name}
