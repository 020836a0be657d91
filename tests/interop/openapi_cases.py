"""Requests generated from /openapi.json, so that a new endpoint is covered by the
malformed-input suite without anyone writing its cases.

`body_variants` walks an operation's request-body schema and returns bodies that each
carry one bad string (`BAD`) in one place: every string property, every string item of
an array, every key and value of a map, at any depth. Operations whose body schema is an
opaque object (`dict[str, Any]` in the handler) have no properties to walk: they need an
entry in `OPAQUE_EXAMPLES`, whose every string (and key) is replaced in turn; the suite
fails, naming the operation, until it has one.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

UUID0 = "00000000-0000-0000-0000-000000000000"

# Valid-looking bodies for the operations whose schema does not describe their body.
OPAQUE_EXAMPLES: dict[tuple[str, str], list[Any]] = {
    ("POST", "/reservation/v1/leases"): [
        {
            "name": "lease",
            "start_date": "2030-01-01 00:00",
            "end_date": "2030-01-01 01:00",
            "reservations": [
                {
                    "resource_type": "virtual:instance",
                    "amount": 1,
                    "vcpus": 1,
                    "memory_mb": 512,
                    "disk_gb": 0,
                    "affinity": "False",
                    "resource_properties": "",
                }
            ],
            "events": [],
            "before_end_date": None,
        },
        {
            "name": "hosts",
            "start_date": "2030-01-01 00:00",
            "end_date": "2030-01-01 01:00",
            "reservations": [
                {
                    "resource_type": "physical:host",
                    "min": 1,
                    "max": 2,
                    "hypervisor_properties": '[">=", "$vcpus", "2"]',
                    "resource_properties": '["=", "$gpu", "True"]',
                }
            ],
            "events": [],
            "before_end_date": None,
        },
    ],
    ("PUT", "/reservation/v1/leases/{lease_id}"): [
        {"name": "renamed", "end_date": "2030-01-01 02:00"},
        {"prolong_for": "1h"},
    ],
    ("POST", "/reservation/v1/os-hosts"): [
        {"name": "private:h1", "gpu": "True"},
    ],
    ("PUT", "/reservation/v1/os-hosts/{host_id}"): [
        {"values": {"gpu": "False"}},
        {"gpu": "False"},
    ],
    ("POST", "/identity/v3/auth/tokens"): [
        {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": "admin",
                            "domain": {"name": "Default"},
                            "password": "secret",
                        }
                    },
                },
                "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}},
            }
        },
        {"auth": {"identity": {"methods": ["token"], "token": {"id": "abc"}}}},
        {
            "auth": {
                "identity": {
                    "methods": ["application_credential"],
                    "application_credential": {
                        "name": "ci",
                        "secret": "s",
                        "user": {"name": "admin", "domain": {"name": "Default"}},
                    },
                }
            }
        },
    ],
    ("POST", "/compute/v2.1/servers/{server_id}/action"): [
        {"reboot": {"type": "SOFT"}},
        {"os-stop": None},
    ],
    ("POST", "/compute/v2.1/os-keypairs"): [
        {"keypair": {"name": "kp", "type": "ssh", "user_id": "u", "public_key": "ssh-rsa AAAA"}}
    ],
    ("POST", "/compute/v2.1/os-server-groups"): [
        {
            "server_group": {
                "name": "g",
                "policy": "anti-affinity",
                "policies": ["affinity"],
                "rules": {"max_server_per_host": "1"},
            }
        }
    ],
    ("PUT", "/compute/v2.1/os-quota-sets/{project_id}"): [
        {"quota_set": {"instances": "10", "cores": 20, "force": "true"}}
    ],
    ("POST", "/compute/v2.1/flavors"): [
        {
            "flavor": {
                "name": "f",
                "id": "f-1",
                "ram": 64,
                "vcpus": "1",
                "disk": 0,
                "OS-FLV-EXT-DATA:ephemeral": 0,
                "swap": 0,
                "rxtx_factor": "1.5",
                "os-flavor-access:is_public": "false",
                "description": "d",
            }
        }
    ],
    ("PUT", "/compute/v2.1/flavors/{flavor_id}"): [{"flavor": {"description": "d"}}],
    ("POST", "/compute/v2.1/flavors/{flavor_id}/os-extra_specs"): [
        {"extra_specs": {"hw:cpu_policy": "dedicated", "quota:cpu_shares": 2}}
    ],
    ("PUT", "/compute/v2.1/flavors/{flavor_id}/os-extra_specs/{key}"): [
        {"hw:cpu_policy": "dedicated"}
    ],
    ("POST", "/orchestration/v1/{project_id}/software_configs"): [
        {
            "name": "cfg",
            "group": "script",
            "config": "#!/bin/sh\necho hi",
            "inputs": [{"name": "foo", "type": "String", "default": "x", "description": "d"}],
            "outputs": [{"name": "result", "type": "String", "description": "d"}],
            "options": {"k": "v"},
        },
        {"config": {"key": "structured"}},
    ],
    ("POST", "/orchestration/v1/{project_id}/software_deployments"): [
        {
            "config_id": UUID0,
            "server_id": "server",
            "input_values": {"foo": "bar"},
            "action": "CREATE",
            "status": "IN_PROGRESS",
            "status_reason": "Deploy data available",
            "stack_user_project_id": "p",
        }
    ],
    ("PUT", "/orchestration/v1/{project_id}/software_deployments/{deployment_id}"): [
        {
            "config_id": UUID0,
            "input_values": {"foo": "bar"},
            "output_values": {"deploy_stdout": "ok"},
            "action": "UPDATE",
            "status": "COMPLETE",
            "status_reason": "Outputs received",
        }
    ],
    ("POST", "/compute/v2.1/flavors/{flavor_id}/action"): [
        {"addTenantAccess": {"tenant": "p"}},
        {"removeTenantAccess": {"tenant": "p"}},
    ],
}


def resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        ref = schema["$ref"].removeprefix("#/")
        node: Any = spec
        for part in ref.split("/"):
            node = node[part]
        schema = node
    return schema


def json_schema(operation: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any] | None:
    """The operation's JSON request-body schema (resolved), or None if it takes none."""
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" not in content:
        return None
    return resolve(content["application/json"].get("schema", {}), spec)


def is_opaque(schema: dict[str, Any], spec: dict[str, Any]) -> bool:
    schema = resolve(schema, spec)
    return schema.get("type") == "object" and not schema.get("properties")


def skeleton(schema: dict[str, Any], spec: dict[str, Any], depth: int = 0) -> Any:
    """A plausible value of `schema`: required properties filled in, the rest left out."""
    schema = resolve(schema, spec)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            choices = [s for s in schema[key] if resolve(s, spec).get("type") != "null"]
            return skeleton(choices[0], spec, depth) if choices else None
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        if depth > 8:
            return {}
        return {k: skeleton(props[k], spec, depth + 1) for k in schema.get("required", [])}
    return {"string": "x", "integer": 1, "number": 1, "boolean": False, "array": []}.get(
        kind or "", "x"
    )


def body_variants(schema: dict[str, Any], spec: dict[str, Any], bad: str) -> list[Any]:
    """Values of `schema`, each with `bad` as exactly one of its strings or keys."""
    out: dict[str, Any] = {}
    for value in _variants(schema, spec, bad, 0):
        out.setdefault(json.dumps(value, sort_keys=True), value)
    return list(out.values())


def _variants(schema: dict[str, Any], spec: dict[str, Any], bad: str, depth: int) -> Iterator[Any]:
    schema = resolve(schema, spec)
    if depth > 8:
        return
    for key in ("anyOf", "oneOf", "allOf"):
        for alternative in schema.get(key, []):
            yield from _variants(alternative, spec, bad, depth + 1)
    kind = schema.get("type")
    if kind == "string" or (kind is None and "enum" in schema):
        yield bad
    elif kind == "array" and "items" in schema:
        for item in _variants(schema["items"], spec, bad, depth + 1):
            yield [item]
    elif kind == "object":
        base = skeleton(schema, spec, depth)
        for name, prop in schema.get("properties", {}).items():
            for value in _variants(prop, spec, bad, depth + 1):
                yield {**base, name: value}
        extra = schema.get("additionalProperties", not schema.get("properties"))
        if extra is not False:
            value_schema = extra if isinstance(extra, dict) else {"type": "string"}
            yield {**base, bad: skeleton(value_schema, spec, depth + 1)}
            for value in _variants(value_schema, spec, bad, depth + 1):
                yield {**base, "key": value}


def example_variants(example: Any, bad: str) -> list[Any]:
    """`example` with each of its strings and keys replaced by `bad` in turn."""
    out: list[Any] = []
    for path in _string_places(example, ()):
        variant = copy.deepcopy(example)
        *parents, last = path
        node = variant
        for step in parents:
            node = node[step]
        if isinstance(last, tuple):  # a key: ("key", name)
            node[bad] = node.pop(last[1])
        else:
            node[last] = bad
        out.append(variant)
    return out


def _string_places(node: Any, path: tuple[Any, ...]) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, str):
        yield path
    elif isinstance(node, dict):
        for key, value in node.items():
            yield (*path, ("key", key))
            yield from _string_places(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _string_places(value, (*path, i))
