"""What a user may put in a server's scheduler hints and metadata.

Scheduler hints follow Nova's schema for the hints Nova knows (`group`, `different_host`,
`same_host`, `query`, `target_cell`, `different_cell`, `build_near_host_ip`, `cidr`).
Nova accepts any other key (its schema has `additionalProperties: true`, for out-of-tree
filters); canopy does too, within bounds on count, size and depth, so a hint can never
be a way to store a large or deep document. Keys starting with `_` are canopy's and are
refused, as are metadata keys canopy sets on remote servers (`canopy_id`, `canopy:*`).
"""

from __future__ import annotations

import ipaddress
import json
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from canopy.domain.errors import InvalidRequest

MAX_HINTS = 32  # keys
MAX_HINT_KEY = 255  # characters
MAX_HINT_STRING = 255  # characters in any string value
MAX_HINT_ITEMS = 64  # entries in any list or object value
MAX_HINT_DEPTH = 3  # nesting of lists/objects inside a hint's value
MAX_HINTS_BYTES = 16 * 1024  # the hints as compact JSON

RESERVED_HINT_PREFIX = "_"
RESERVED_METADATA_KEY = "canopy_id"
RESERVED_METADATA_PREFIX = "canopy:"

_CIDR = re.compile(r"^/[0-9a-f.:]+$")


def check_metadata_keys(metadata: Mapping[str, Any]) -> None:
    """Refuse the metadata keys canopy writes on remote servers (a user setting them
    could make canopy adopt or delete the wrong server).

    One exception: `canopy_id` holding a UUID is what a parent canopy sends when this
    canopy is one of its clouds (cascading). It stays user metadata here: every driver
    writes this canopy's own id over it on the remote server, so it cannot make this
    canopy adopt or delete anything."""
    for key, value in metadata.items():
        if key == RESERVED_METADATA_KEY and _is_uuid(value):
            continue
        if key == RESERVED_METADATA_KEY or key.startswith(RESERVED_METADATA_PREFIX):
            raise InvalidRequest(
                f"Invalid input for field/attribute metadata. Value: {_shown(key)}. "
                f"Metadata keys '{RESERVED_METADATA_KEY}' and "
                f"'{RESERVED_METADATA_PREFIX}*' are reserved for canopy."
            )


def check_scheduler_hints(hints: Any) -> dict[str, Any]:
    """The hints if they are acceptable; else InvalidRequest in Nova's words."""
    if not isinstance(hints, dict):
        raise _invalid("os:scheduler_hints", hints, "is not of type 'object'")
    if len(hints) > MAX_HINTS:
        raise InvalidRequest(
            f"Invalid input for field/attribute os:scheduler_hints. At most {MAX_HINTS} "
            f"scheduler hints are accepted, {len(hints)} were given."
        )
    for key, value in hints.items():
        if not key or len(key) > MAX_HINT_KEY or not key.isprintable() or not _utf8(key):
            raise InvalidRequest(
                f"Invalid input for field/attribute os:scheduler_hints. Hint name "
                f"{_shown(key)} must be 1 to {MAX_HINT_KEY} printable characters."
            )
        if key.startswith(RESERVED_HINT_PREFIX):
            raise InvalidRequest(
                f"Invalid input for field/attribute os:scheduler_hints. Hint name "
                f"{_shown(key)} is reserved: names starting with "
                f"'{RESERVED_HINT_PREFIX}' belong to canopy."
            )
        _bounded(key, value, 0)
        check = _KNOWN.get(key)
        if check is not None:
            check(key, value)
    size = len(json.dumps(hints, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_HINTS_BYTES:
        raise InvalidRequest(
            f"Invalid input for field/attribute os:scheduler_hints. The hints take {size} "
            f"bytes as JSON, more than {MAX_HINTS_BYTES}."
        )
    return dict(hints)


def _bounded(key: str, value: Any, depth: int) -> None:
    """JSON scalars, and lists/objects no deeper, longer or wider than the bounds."""
    if value is None or isinstance(value, bool | int | float):
        return
    if isinstance(value, str):
        if len(value) > MAX_HINT_STRING:
            raise _invalid(key, value, f"is longer than {MAX_HINT_STRING} characters")
        if not _utf8(value):
            raise _invalid(key, value, "is not valid UTF-8 text")
        return
    if isinstance(value, list | dict):
        if depth >= MAX_HINT_DEPTH:
            raise _invalid(key, value, f"nests deeper than {MAX_HINT_DEPTH} levels")
        if len(value) > MAX_HINT_ITEMS:
            raise _invalid(key, value, f"has more than {MAX_HINT_ITEMS} items")
        items = value.values() if isinstance(value, dict) else value
        for k in value if isinstance(value, dict) else ():
            if len(k) > MAX_HINT_STRING or not _utf8(k):
                raise _invalid(
                    key, value, f"has a key longer than {MAX_HINT_STRING} or not valid text"
                )
        for item in items:
            _bounded(key, item, depth + 1)
        return
    raise _invalid(key, value, "is not a JSON value")


def _utf8(text: str) -> bool:
    """False for text with a lone surrogate, which no database column can store."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _string(key: str, value: Any) -> None:
    if not isinstance(value, str):
        raise _invalid(key, value, "is not of type 'string'")


def _name(key: str, value: Any) -> None:
    _string(key, value)
    if not value.strip() or value != value.strip():
        raise _invalid(key, value, "is not a valid name")


def _server_id(key: str, value: Any) -> None:
    _string(key, value)
    try:
        uuid.UUID(value)
    except ValueError:
        raise _invalid(key, value, "is not a 'uuid'") from None


def _server_ids(key: str, value: Any) -> None:
    """A server id, or a list of them."""
    if isinstance(value, list):
        for item in value:
            _server_id(key, item)
        return
    if not isinstance(value, str):
        raise _invalid(key, value, "is not of type 'string', 'array'")
    _server_id(key, value)


def _strings(key: str, value: Any) -> None:
    if isinstance(value, list):
        for item in value:
            _string(key, item)
        return
    if not isinstance(value, str):
        raise _invalid(key, value, "is not of type 'string', 'array'")


def _query(key: str, value: Any) -> None:
    if not isinstance(value, str | dict):
        raise _invalid(key, value, "is not of type 'string', 'object'")


def _ip(key: str, value: Any) -> None:
    _string(key, value)
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise _invalid(key, value, "is not a 'ip-address'") from None


def _cidr(key: str, value: Any) -> None:
    _string(key, value)
    if not _CIDR.match(value):
        raise _invalid(key, value, f"does not match '{_CIDR.pattern}'")


# Nova's schema (nova/api/openstack/compute/schemas/scheduler_hints.py), key by key.
_KNOWN: dict[str, Callable[[str, Any], None]] = {
    "group": _string,
    "different_host": _server_ids,
    "same_host": _server_ids,
    "query": _query,
    "target_cell": _name,
    "different_cell": _strings,
    "build_near_host_ip": _ip,
    "cidr": _cidr,
}


def _is_uuid(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _invalid(key: str, value: Any, why: str) -> InvalidRequest:
    shown = _shown(value)
    return InvalidRequest(f"Invalid input for field/attribute {key}. Value: {shown}. {shown} {why}")
