"""What a body of Heat's software config and deployment API may hold, checked before
anything is written (pure): Heat's fields, with their types and sizes.

Heat reads the keys it knows and ignores the rest, and takes any JSON for most of them;
canopy refuses an unknown key and a wrong type with a 400 naming the field, so that a typo
is not silently dropped and nothing stored is of a shape the readers do not expect.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from canopy.domain.errors import InvalidRequest
from canopy.orchestration.resources.deployment_config import input_io, output_io
from canopy.orchestration.resources.software_config import IO_TYPES, MAX_CONFIG, UNGROUPED

MAX_NAME = 255  # a name, group, server id, action or status (Heat's columns)
MAX_REASON = 64 << 10  # a status reason, characters
MAX_VALUES = 1 << 20  # input or output values, bytes of their JSON
MAX_IO = 1000  # inputs or outputs of one config

CONFIG_KEYS = ("name", "group", "config", "inputs", "outputs", "options")
CREATE_KEYS = (
    "config_id",
    "server_id",
    "input_values",
    "action",
    "status",
    "status_reason",
    "stack_user_project_id",
)
UPDATE_KEYS = ("config_id", "input_values", "output_values", "action", "status", "status_reason")
_INPUT_KEYS = ("name", "description", "type", "default", "replace_on_change", "value")
_OUTPUT_KEYS = ("name", "description", "type", "error_output")


def _known(body: Mapping[str, Any], keys: tuple[str, ...], what: str) -> None:
    for key in body:
        if key not in keys:
            raise InvalidRequest(
                f"Unknown field {str(key)[:64]!r} in the {what}: the fields are "
                + ", ".join(keys)
                + "."
            )


def text(body: Mapping[str, Any], key: str, *, limit: int = MAX_NAME) -> str | None:
    """A string field (None when absent or null), at most `limit` characters."""
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"{key} must be a string, not {type(value).__name__}.")
    if len(value) > limit:
        raise InvalidRequest(f"{key} is at most {limit} characters.")
    return value


def _values(body: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidRequest(f"{key} must be a map, not {type(value).__name__}.")
    if len(json.dumps(value).encode()) > MAX_VALUES:
        raise InvalidRequest(f"{key} is at most {MAX_VALUES} bytes of JSON.")
    return value


def _io(items: Any, key: str, allowed: tuple[str, ...]) -> list[dict[str, Any]]:
    if items is None:
        return []
    if not isinstance(items, list):
        raise InvalidRequest(f"{key}: Software Config I/O Schema must be in a list.")
    if len(items) > MAX_IO:
        raise InvalidRequest(f"{key}: at most {MAX_IO} items.")
    for item in items:
        if not isinstance(item, dict):
            raise InvalidRequest(f"{key}: Software Config I/O Schema must be a dict.")
        _known(item, allowed, f"{key} item")
        name = text(item, "name")
        if not name:
            raise InvalidRequest(f"{key}: each item needs a name (a string).")
        where = f"{key}.{name[:64]}"
        kind = item.get("type")
        if kind is not None and kind not in IO_TYPES:
            raise InvalidRequest(
                f"{where}.type: {str(kind)[:64]!r} is not one of the allowed values: "
                + ", ".join(IO_TYPES)
                + "."
            )
        description = item.get("description")
        if description is not None and not isinstance(description, str):
            raise InvalidRequest(f"{where}.description must be a string.")
        for flag in ("replace_on_change", "error_output"):
            if flag in item and not isinstance(item[flag], bool):
                raise InvalidRequest(f"{where}.{flag} must be a boolean.")
    return items


def config_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    """A `POST /software_configs` body as its row's fields: name, group, body (Heat's
    `{config, inputs, outputs, options}`, inputs and outputs in their `as_dict` shape)."""
    _known(body, CONFIG_KEYS, "software config")
    name = text(body, "name")
    group = text(body, "group") or UNGROUPED
    config = body.get("config")
    if config is not None and not isinstance(config, str | dict):
        raise InvalidRequest(f"config must be a string or a map, not {type(config).__name__}.")
    size = len(config.encode() if isinstance(config, str) else json.dumps(config).encode())
    if size > MAX_CONFIG:
        raise InvalidRequest(f"config is at most {MAX_CONFIG} bytes.")
    options = body.get("options")
    if options is not None and not isinstance(options, dict):
        raise InvalidRequest(f"options must be a map, not {type(options).__name__}.")
    inputs = []
    for item in _io(body.get("inputs"), "inputs", _INPUT_KEYS):
        shaped = input_io(item)
        if "value" in item:
            shaped["value"] = item["value"]
        inputs.append(shaped)
    outputs = [output_io(o) for o in _io(body.get("outputs"), "outputs", _OUTPUT_KEYS)]
    return {
        "name": name,
        "group": group,
        "body": {"config": config, "inputs": inputs, "outputs": outputs, "options": options or {}},
    }


def _state(body: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("action", "status"):
        if body.get(key) is not None:
            out[key] = text(body, key)
    if body.get("status_reason") is not None:
        out["status_reason"] = text(body, "status_reason", limit=MAX_REASON)
    return out


def create_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    """A `POST /software_deployments` body: config_id and server_id required."""
    _known(body, CREATE_KEYS, "software deployment")
    text(body, "stack_user_project_id", limit=64)  # Heat's check; canopy has no stack users
    out: dict[str, Any] = {}
    for key in ("config_id", "server_id"):
        value = text(body, key)
        if not value:
            raise InvalidRequest(f"{key} is required (a string).")
        out[key] = value
    out["input_values"] = _values(body, "input_values")
    return {**out, **_state(body)}


def update_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    """A `PUT /software_deployments/{id}` body: the fields given (null ones are left
    unchanged, as Heat does)."""
    _known(body, UPDATE_KEYS, "software deployment")
    out = _state(body)
    if body.get("config_id") is not None:
        out["config_id"] = text(body, "config_id")
    for key in ("input_values", "output_values"):
        if body.get(key) is not None:
            out[key] = _values(body, key)
    return out
