"""Nova's request bodies for flavor management, checked as its JSON schemas check them.

Each failure is Nova's 400 with its wording: `Invalid input for field/attribute F. Value:
V. why` (jsonschema 4.23's words, which Nova's own tests expect: "should be non-empty"
for an empty string); names follow Nova's `name` format (printable, no leading or trailing
blank). A flavor id is Nova's too: up to 255 characters (docs/architecture.md, "Flavor ids
of up to 255 characters").
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from canopy.api.compute.microversion import APIVersion
from canopy.domain.errors import InvalidRequest
from canopy.services.flavors import NewFlavor
from canopy.store.models import FLAVOR_ID_LENGTH as MAX_FLAVOR_ID

MAX_INT = 0x7FFFFFFF  # Nova's db constant MAX_INT
MAX_FLOAT = 3.40282e38  # SQL_SP_FLOAT_MAX
_ID = re.compile(r"^(?! )[a-zA-Z0-9. _-]+(?<! )$")
_DIGITS = re.compile(r"^[0-9]+$")
_DECIMAL = re.compile(r"^[0-9]+(\.[0-9]+)?$")
_SPEC_KEY = re.compile(r"^[a-zA-Z0-9-_:. ]{1,255}$")
_TRUE = ("True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes")
_FALSE = ("False", "FALSE", "false", "0", "OFF", "Off", "off", "NO", "No", "no")
_BASE = ("name", "id", "ram", "vcpus", "disk", "OS-FLV-EXT-DATA:ephemeral", "swap")
_MORE = ("rxtx_factor", "os-flavor-access:is_public")


def bad(field: str, value: Any, why: str) -> InvalidRequest:
    return InvalidRequest(f"Invalid input for field/attribute {field}. Value: {value}. {why}")


def _unexpected(field: str, value: Any, extra: list[str]) -> InvalidRequest:
    verb = "was" if len(extra) == 1 else "were"
    names = ", ".join(repr(x) for x in sorted(extra))
    return bad(field, value, f"Additional properties are not allowed ({names} {verb} unexpected)")


def one_object(body: Any, key: str) -> dict[str, Any]:
    """`body[key]`, when the body is `{key: {...}}` and nothing else."""
    if not isinstance(body, dict) or key not in body:
        raise InvalidRequest(f"'{key}' is a required property")
    extra = [k for k in body if k != key]
    if extra:
        raise _unexpected(key, body, extra)
    inner = body[key]
    if not isinstance(inner, dict):
        raise bad(key, inner, f"{inner!r} is not of type 'object'")
    return inner


def _name(value: Any) -> str:
    if not isinstance(value, str):
        raise bad("name", value, f"{value!r} is not of type 'string'")
    if not value:
        raise bad("name", value, f"{value!r} should be non-empty")
    if len(value) > 255:
        raise bad("name", value, f"{value!r} is too long")
    if value != value.strip() or not value.isprintable():
        raise InvalidRequest(
            "An invalid 'name' value was provided. The name must be: printable characters. "
            "Can not start or end with whitespace."
        )
    return value


def _int(field: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise bad(field, value, f"{value!r} is not of type 'integer', 'string'")
    if isinstance(value, str) and not _DIGITS.match(value):
        raise bad(field, value, f"{value!r} does not match '^[0-9]+$'")
    number = int(value)
    if number < minimum:
        raise bad(field, value, f"{number} is less than the minimum of {minimum}")
    if number > MAX_INT:
        raise bad(field, value, f"{number} is greater than the maximum of {MAX_INT}")
    return number


def _flavor_id(value: Any) -> str:
    """Nova's `id` on create: a string of 1 to 255 characters of its pattern (no leading or
    trailing blank), or a number, kept as its string; absent, null or a zero number (Nova's
    `if not flavorid`): a new UUID. "auto" is an id like any other: clients (OSC, the SDK,
    novaclient) turn it into null before they send it."""
    if value is None:
        return str(uuid.uuid4())
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise bad("id", value, f"{value!r} is not of type 'string', 'number', 'null'")
    if isinstance(value, str):
        if not value:
            raise bad("id", value, f"{value!r} should be non-empty")
        if len(value) > MAX_FLAVOR_ID:
            raise bad("id", value, f"{value!r} is too long")
        if not _ID.match(value):
            raise bad("id", value, f"{value!r} does not match '{_ID.pattern}'")
        return value
    if not value:
        return str(uuid.uuid4())
    text = str(value)
    if len(text) > MAX_FLAVOR_ID:  # Nova's column would refuse it: a 400, not a 500
        raise bad("id", value, f"{text!r} is too long")
    return text


def _rxtx(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise bad("rxtx_factor", value, f"{value!r} is not of type 'number', 'string'")
    if isinstance(value, str):
        if not _DECIMAL.match(value):
            raise bad("rxtx_factor", value, f"{value!r} does not match '^[0-9]+(\\.[0-9]+)?$'")
        value = float(value)
    if value != value:  # NaN (Python's JSON reads it): no order, so neither bound refuses it
        raise bad("rxtx_factor", value, f"{value!r} is not a number")
    if value <= 0:
        raise bad("rxtx_factor", value, f"{value} is less than or equal to the minimum of 0")
    if value > MAX_FLOAT:
        raise bad("rxtx_factor", value, f"{value} is greater than the maximum of {MAX_FLOAT:g}")
    return float(value)


def _public(value: Any) -> bool:
    if value is True or value in _TRUE:
        return True
    if value is False or value in _FALSE:
        return False
    choices = [True, *_TRUE, False, *_FALSE]
    raise bad("os-flavor-access:is_public", value, f"{value!r} is not one of {choices}")


def description(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad("description", value, f"{value!r} is not of type 'string', 'null'")
    if len(value) > 65535:
        raise bad("description", value, f"{value!r} is too long")
    if not all(c.isprintable() or c in "\t\n\r" for c in value):
        raise bad("description", value, "the description must be printable characters")
    return value


def new_flavor(body: Any, v: APIVersion) -> NewFlavor:
    """A `POST /flavors` body as Nova's schema for microversion `v` accepts it."""
    f = one_object(body, "flavor")
    allowed = {*_BASE, *_MORE, *(("description",) if v.at_least(55) else ())}
    extra = [k for k in f if k not in allowed]
    if extra:
        raise _unexpected("flavor", f, extra)
    for need in ("name", "ram", "vcpus", "disk"):
        if need not in f:
            raise bad("flavor", f, f"'{need}' is a required property")
    return NewFlavor(
        id=_flavor_id(f.get("id")),
        name=_name(f["name"]),
        ram_mb=_int("ram", f["ram"], 1),
        vcpus=_int("vcpus", f["vcpus"], 1),
        disk_gb=_int("disk", f["disk"], 0),
        ephemeral_gb=_int("OS-FLV-EXT-DATA:ephemeral", f.get("OS-FLV-EXT-DATA:ephemeral", 0), 0),
        swap_mb=_int("swap", f.get("swap", 0), 0),
        rxtx_factor=_rxtx(f.get("rxtx_factor", 1.0)),
        is_public=_public(f.get("os-flavor-access:is_public", True)),
        description=description(f.get("description")),
    )


def new_description(body: Any) -> str | None:
    """A `PUT /flavors/{id}` body (2.55): the description, the only thing it changes."""
    f = one_object(body, "flavor")
    extra = [k for k in f if k != "description"]
    if extra:
        raise _unexpected("flavor", f, extra)
    if "description" not in f:
        raise bad("flavor", f, "'description' is a required property")
    return description(f["description"])


def extra_specs(specs: Any, field: str = "extra_specs") -> dict[str, str]:
    """Extra specs as Nova takes them (key pattern, string or number values of at most
    255 characters), with every value stored as a string."""
    if not isinstance(specs, dict):
        raise bad(field, specs, f"{specs!r} is not of type 'object'")
    out: dict[str, str] = {}
    for key, value in specs.items():
        if not _SPEC_KEY.match(key):
            raise _unexpected(field, specs, [key])
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise bad(key, value, f"{value!r} is not of type 'string', 'number'")
        text = value if isinstance(value, str) else str(value)
        if len(text) > 255:
            if isinstance(value, str):
                raise bad(key, value, f"{value!r} is too long")
            raise InvalidRequest(
                f"Invalid input received: extra_specs value has {len(text)} characters, "
                "more than 255."
            )
        out[key] = text
    return out


def tenant(body: Any, action: str) -> str:
    """The project an `addTenantAccess` / `removeTenantAccess` action names."""
    inner = one_object(body, action)
    extra = [k for k in inner if k != "tenant"]
    if extra:
        raise _unexpected(action, inner, extra)
    if "tenant" not in inner:
        raise bad(action, inner, "'tenant' is a required property")
    value = inner["tenant"]
    if not isinstance(value, str):
        raise bad("tenant", value, f"{value!r} is not of type 'string'")
    if not value:
        raise bad("tenant", value, f"{value!r} should be non-empty")
    if len(value) > 255:
        raise bad("tenant", value, f"{value!r} is too long")
    return value
