"""Heat's error body: `{"code", "title", "explanation", "error": {"message", "type",
"traceback"}}` (heat/api/middleware/fault.py), with webob's titles and explanations."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

_EXPLANATIONS = {
    400: (
        "The server could not comply with the request since it is either malformed or "
        "otherwise incorrect."
    ),
    401: (
        "This server could not verify that you are authorized to access the document you requested."
    ),
    403: "Access was denied to this resource.",
    404: "The resource could not be found.",
    405: "The method specified is not allowed for this resource.",
    409: "There was a conflict when trying to complete your request.",
    413: "The request is larger than the server is willing or able to process.",
    415: "The request media type is not supported by this server.",
    501: "The server has either erred or is incapable of performing the requested operation.",
    503: "The server is currently unavailable. Please try again at a later time.",
}
_TYPES = {
    400: "StackValidationFailed",
    401: "HTTPUnauthorized",
    403: "Forbidden",
    404: "EntityNotFound",
    405: "HTTPMethodNotAllowed",
    409: "HTTPConflict",
    413: "RequestLimitExceeded",
    415: "HTTPUnsupportedMediaType",
    501: "NotSupported",
    503: "HTTPServiceUnavailable",
}


def heat_fault(code: int, message: str) -> dict[str, Any]:
    try:
        title = HTTPStatus(code).phrase
    except ValueError:
        title = "Error"
    return {
        "code": code,
        "title": title,
        "explanation": _EXPLANATIONS.get(code, title),
        "error": {"message": message, "type": _type(code, message), "traceback": None},
    }


def _type(code: int, message: str) -> str:
    # Heat's RequestLimitExceeded is a 400 with its own type (fault.py's error_map).
    if code == 400 and message.startswith("Request limit exceeded:"):
        return "RequestLimitExceeded"
    return _TYPES.get(code, "HTTPError")
