"""Glance's error body: webob's JSON rendering of an HTTP error.

`{"message": "...", "code": "404 Not Found", "title": "Not Found"}`. openstacksdk reads the
top-level `message`; python-glanceclient shows it as the error text.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any


def glance_fault(code: int, message: str) -> dict[str, Any]:
    try:
        title = HTTPStatus(code).phrase
    except ValueError:
        title = "Error"
    return {"message": message, "code": f"{code} {title}", "title": title}
