"""/openapi.json lists the statuses each operation really answers, in its service's format.

FastAPI documents a 422 for every operation with parameters; Canopy never answers 422 (a bad
request is a 400 in the service's own fault body). `install_openapi` rewrites the generated
document once: every 422 goes, and each operation lists its 4xx from `statuses()`, each with
the fault schema of its service (Nova's `{"itemNotFound": {...}}`, Keystone's `{"error":
{...}}`, Glance's `{"message", "code", "title"}`).

`statuses()` is the union of what every operation of its kind answers (a body can be
malformed, too large or not JSON; a path names something that may not exist; a token may be
missing; compute's microversion headers may be bad) and the operation's own entry in
`OWN`, which names the rest (403 role checks, 404s named in a body, 409 conflicts). An
operation missing from `OWN` is refused by the tests: a new route must be described here.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI

from canopy.api.openapi_own import OWN

_VERSION_DOCS = frozenset(
    {
        "/identity",
        "/identity/v3",
        "/compute/",
        "/compute/v2.1/",
        "/image/",
        "/image/versions",
        "/reservation/",
        "/reservation/versions",
    }
)
_OPEN = frozenset({"/healthz", "/metrics", *_VERSION_DOCS})


def service(path: str) -> str:
    """Which service's fault format an operation at `path` answers in."""
    for prefix, name in (
        ("/compute", "compute"),
        ("/image", "image"),
        ("/identity", "identity"),
        ("/reservation", "reservation"),
        ("/orchestration", "orchestration"),
        ("/canopy", "admin"),
    ):
        if path == prefix or path.startswith(prefix + "/"):
            return name
    return "canopy"


def statuses(method: str, path: str, operation: dict[str, Any]) -> frozenset[int]:
    """The 4xx an operation answers: its kind's common ones and its own (`OWN`)."""
    # A route missing from OWN still gets the common statuses (the document must never
    # fail to build); tests/api/test_openapi_statuses.py refuses it.
    found = set(OWN.get((method.upper(), path), ()))
    params = operation.get("parameters", [])
    if any(p.get("in") == "path" for p in params):
        found.add(404)
    if any(p.get("in") == "query" for p in params):
        found.add(400)
    if "requestBody" in operation:
        # Blazar refuses a Content-Type it does not read as JSON with a 400, not a 415.
        found |= {400, 413} if service(path) == "reservation" else {400, 413, 415}
    if path not in _OPEN:
        found.add(401)
        if service(path) == "admin":
            found.add(403)
        if service(path) in ("compute", "reservation"):
            found |= {400, 406}  # a malformed or unsupported microversion header
    return frozenset(found)


# Fault schemas ----------------------------------------------------------------------------

_DETAIL = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {"code": {"type": "integer"}, "message": {"type": "string"}},
}
SCHEMAS: dict[str, dict[str, Any]] = {
    # Flask's body (an unknown path, a body that is not JSON, a refused token) or Blazar's
    # own for an error of the route's work (api/reservation/faults.py).
    "BlazarError": {
        "oneOf": [
            {"$ref": "#/components/schemas/BlazarFrameworkError"},
            {"$ref": "#/components/schemas/BlazarApiError"},
        ]
    },
    "BlazarFrameworkError": {
        "type": "object",
        "required": ["error", "error_message"],
        "properties": {"error": {"type": "integer"}, "error_message": {"type": "string"}},
    },
    "BlazarApiError": {
        "type": "object",
        "required": ["error_code", "error_message", "error_name"],
        "properties": {
            "error_code": {"type": "integer"},
            "error_message": {"type": "string"},
            # The code again; an unexpected 500 is "INTERNAL_SERVER_ERROR".
            "error_name": {"type": ["integer", "string"]},
        },
    },
    "FaultDetail": _DETAIL,
    "HeatError": {
        "type": "object",
        "required": ["code", "title", "explanation", "error"],
        "properties": {
            "code": {"type": "integer"},
            "title": {"type": "string"},
            "explanation": {"type": "string"},
            "error": {
                "type": "object",
                "required": ["message", "type", "traceback"],
                "properties": {
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                    "traceback": {"type": ["string", "null"]},
                },
            },
        },
    },
    "KeystoneError": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "title"],
                "properties": {
                    "code": {"type": "integer"},
                    "message": {"type": "string"},
                    "title": {"type": "string"},
                },
            }
        },
    },
    "GlanceError": {
        "type": "object",
        "required": ["message", "code", "title"],
        "properties": {
            "message": {"type": "string"},
            "code": {"type": "string", "examples": ["404 Not Found"]},
            "title": {"type": "string"},
        },
    },
}


def fault_schema(path: str, code: int) -> dict[str, Any]:
    """The JSON schema of the fault body an operation at `path` answers `code` with."""
    from canopy.api.errors import fault_name

    kind = service(path)
    if kind == "identity":
        return {"$ref": "#/components/schemas/KeystoneError"}
    if kind == "image":
        return {"$ref": "#/components/schemas/GlanceError"}
    if kind == "reservation":
        return {"$ref": "#/components/schemas/BlazarError"}
    if kind == "orchestration":
        return {"$ref": "#/components/schemas/HeatError"}
    name = fault_name(code)
    return {
        "type": "object",
        "required": [name],
        "properties": {name: {"$ref": "#/components/schemas/FaultDetail"}},
    }


def _phrase(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:  # pragma: no cover - every code used here is a standard one
        return "Error"


def rewrite(schema: dict[str, Any]) -> dict[str, Any]:
    """Rewrite a generated OpenAPI document in place (and return it)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(SCHEMAS)
    for gone in ("HTTPValidationError", "ValidationError"):
        components.pop(gone, None)
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            responses: dict[str, Any] = operation.setdefault("responses", {})
            for code in [c for c in responses if c.startswith("4")]:
                if code == "422" or int(code) not in statuses(method, path, operation):
                    del responses[code]
            for status in sorted(statuses(method, path, operation)):
                entry = responses.setdefault(str(status), {"description": _phrase(status)})
                media = entry.setdefault("content", {}).setdefault("application/json", {})
                media["schema"] = fault_schema(path, status)
            operation["responses"] = dict(sorted(responses.items()))
    return schema


def install_openapi(app: FastAPI) -> None:
    """Serve the rewritten document at /openapi.json (built once, on first request)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = rewrite(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
