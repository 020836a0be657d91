"""JSON responses encoded by orjson, for the routes whose bodies are big (list pages).

A route that returns a dict has FastAPI walk it (`jsonable_encoder`, or the response
model's validation) and then `json.dumps` it: for a page of 100 servers that was more CPU
than building the page. These routes build plain JSON types themselves (str, int, bool,
None, lists, dicts with str keys) and return this response, which FastAPI sends as is.
The bytes mean the same as JSONResponse's: compact separators, UTF-8 (no \\u escapes),
keys in insertion order.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Response


def json_response(doc: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(doc), status_code=status_code, media_type="application/json")


def json_body(body: bytes, status_code: int = 200) -> Response:
    """A body already encoded (api/compute/page_json.py writes a page's text itself)."""
    return Response(body, status_code=status_code, media_type="application/json")
