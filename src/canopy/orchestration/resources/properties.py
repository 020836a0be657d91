"""Checking and typing a resource's properties against its type's schema (Heat's rules)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from canopy.domain.errors import InvalidRequest
from canopy.orchestration.resources.base import Prop

_TRUE = ("true", "yes", "on", "1", "t", "y")
_FALSE = ("false", "no", "off", "0", "f", "n")


def typed(
    name: str, schema: Mapping[str, Prop], props: Any, *, partial: bool = False
) -> dict[str, Any]:
    """`props` checked and converted, with defaults; InvalidRequest names what is wrong.

    With `partial`, a None value is a reference not yet known: it is kept and not checked
    (validation before the stack exists); otherwise a required property must have a value.
    """
    where = f"resources.{name}.properties"
    if props is None:
        props = {}
    if not isinstance(props, Mapping):
        raise InvalidRequest(f"{where}: the properties must be a map.")
    out: dict[str, Any] = {}
    for key in props:
        if key not in schema:
            known = ", ".join(sorted(schema)) or "none"
            raise InvalidRequest(f"{where}: Unknown Property {key}. Known properties: {known}.")
    for key, prop in schema.items():
        value = props.get(key)
        if value is None and key in props and partial:
            out[key] = None
            continue
        if value is None:
            if prop.required:
                raise InvalidRequest(f"{where}: Property {key} not assigned")
            value = prop.default
            if value is None:
                out[key] = None
                continue
        out[key] = _convert(f"{where}.{key}", prop, value)
    return out


def _convert(where: str, prop: Prop, value: Any) -> Any:
    kind = prop.type
    try:
        if kind == "any":
            return value
        if kind == "string":
            if isinstance(value, bool):
                value = "true" if value else "false"
            elif isinstance(value, int | float):
                value = str(value)
            elif isinstance(value, Mapping | list):
                if prop.strict:
                    raise ValueError
                value = json.dumps(value)
            if not isinstance(value, str):
                raise ValueError
        elif kind == "integer":
            if isinstance(value, bool):
                raise ValueError
            value = int(value) if isinstance(value, str) else value
            if not isinstance(value, int):
                raise ValueError
        elif kind == "number":
            if isinstance(value, bool):
                raise ValueError
            value = float(value) if isinstance(value, str) else value
            if not isinstance(value, int | float):
                raise ValueError
        elif kind == "boolean":
            if isinstance(value, str) and value.lower() in _TRUE + _FALSE:
                value = value.lower() in _TRUE
            if not isinstance(value, bool):
                raise ValueError
        elif kind == "map":
            if not isinstance(value, Mapping):
                raise ValueError
            value = dict(value)
        elif kind == "list":
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",")] if value else []
            if not isinstance(value, list):
                raise ValueError
    except (ValueError, TypeError):
        shown = _shown(value)
        raise InvalidRequest(f"{where}: Value {shown} is not a valid {kind}.") from None
    if prop.allowed and value not in prop.allowed:
        allowed = ", ".join(map(str, prop.allowed))
        raise InvalidRequest(f"{where}: {value!r} is not one of the allowed values: {allowed}.")
    return value


def _shown(value: Any) -> str:
    """A bad value as an error message shows it: its start (an integer of thousands of
    digits, which Python will not print, is said to be one)."""
    try:
        return json.dumps(value, default=str)[:80]
    except (ValueError, TypeError, OverflowError):
        return "(too large to show)"


def convert(where: str, prop: Prop, value: Any) -> Any:
    """One value checked and converted to `prop`'s type; InvalidRequest names `where`."""
    return _convert(where, prop, value)
