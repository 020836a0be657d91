"""Whether a request's text is valid Unicode: its path, query, the headers the services
read, and a JSON body.

Python's `json` turns the escape `"\\ud800"` (and UTF-8-encoded surrogates, which it
decodes with `surrogatepass`) into a string holding a lone surrogate. Such a string cannot
be encoded as UTF-8, so it fails wherever it goes next: in a database driver, or in the
400 that echoes it back. Percent-encoded bytes that are not UTF-8 (`%ED%A0%80`, `%FF`)
are the same defect in a URL. Each check here returns what is wrong, phrased for the
caller, or None; `canopy.api.request_guard` answers the first problem with a 400.

A NUL character (`"\\u0000"`) is valid Unicode but no PostgreSQL text column can hold
one (the driver fails with "invalid byte sequence"), while SQLite stores it: refused in
every JSON body at the edge, a request gets the same 400 on either database.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from urllib.parse import unquote_to_bytes

from canopy.domain.text import NUL, NUL_WHY, SURROGATE, SURROGATE_WHY, first_string

# Headers the services interpret (ASGI names them in lower case); others are passed over.
READ_HEADERS = {
    b"x-auth-token": "X-Auth-Token",
    b"x-subject-token": "X-Subject-Token",
    b"openstack-api-version": "OpenStack-API-Version",
    b"x-openstack-nova-api-version": "X-OpenStack-Nova-API-Version",
    b"x-openstack-request-id": "X-OpenStack-Request-ID",
}

# A JSON escape of a surrogate code point. Paired ones (how `json.dumps` writes an emoji)
# are fine; finding any sends the body through the exact check.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
# A JSON escape of NUL (a raw NUL byte in a JSON string is malformed JSON already).
_NUL_ESCAPE = re.compile(r"\\u0000")
_SHOWN = 60


def path_problem(raw_path: bytes | None, path: str) -> str | None:
    """The path, percent-decoded, must be UTF-8."""
    if raw_path is None:
        return None if SURROGATE.search(path) is None else _PATH
    try:
        unquote_to_bytes(raw_path).decode("utf-8")
    except UnicodeDecodeError:
        return _PATH
    return None


_PATH = "The request path is not valid UTF-8 text."


def query_problem(query_string: bytes) -> str | None:
    """Every query parameter's name and value, percent-decoded, must be UTF-8."""
    if not query_string:
        return None
    for part in query_string.split(b"&"):
        name, _, value = part.partition(b"=")
        raw_name = unquote_to_bytes(name.replace(b"+", b" "))
        try:
            shown = raw_name.decode("utf-8")
        except UnicodeDecodeError:
            return "A query parameter name is not valid UTF-8 text."
        try:
            unquote_to_bytes(value.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            return (
                f"Invalid input for query parameter {shown[:_SHOWN]}: the value is not valid "
                "UTF-8 text."
            )
    return None


def header_problem(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The headers the services read must be UTF-8."""
    for key, value in headers:
        name = READ_HEADERS.get(key.lower())
        if name is not None:
            try:
                value.decode("utf-8")
            except UnicodeDecodeError:
                return f"Invalid header {name}: it is not valid UTF-8 text."
    return None


def json_problem(body: bytes) -> str | None:
    """A JSON body must be UTF-8 (RFC 8259) and hold no lone surrogate escape and no NUL.

    Malformed JSON is left to the JSON parser, which says where it went wrong."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        return f"Malformed request body: it is not valid UTF-8 text (at byte {e.start})."
    surrogate = _SURROGATE_ESCAPE.search(text) is not None
    nul = _NUL_ESCAPE.search(text) is not None
    if not surrogate and not nul:
        return None
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if surrogate:
        where = first_string(doc, SURROGATE)
        if where is not None:
            return f"Invalid input for field/attribute {where}: {SURROGATE_WHY}"
    if nul:
        where = first_string(doc, NUL)
        if where is not None:
            return f"Invalid input for field/attribute {where}: {NUL_WHY}"
    return None
