"""Reading a template: its kind and version, its sections, and a static check of it all.

Everything a user can get wrong without sending parameter values is refused here, with
the path where it is: unknown keys, references to missing resources or parameters,
function arguments, dependency cycles, and sizes past the bounds in `limits`.
"""

from __future__ import annotations

import graphlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from canopy.orchestration.template import limits
from canopy.orchestration.template.errors import TemplateError, join_path
from canopy.orchestration.template.functions_base import (
    Function,
    Parser,
    Scope,
    dependencies_of,
)
from canopy.orchestration.template.limits import check_size
from canopy.orchestration.template.parameters import (
    PSEUDO_CFN,
    PSEUDO_HOT,
    ParamSchema,
    parse_cfn_parameters,
    parse_hot_parameters,
)
from canopy.orchestration.template.versions import CFN_DATE, VERSIONS, Version, hot_version


@dataclass(frozen=True)
class Keys:
    """The section and entry keys of one template kind (HOT names or CFN names)."""

    parameters: str
    resources: str
    outputs: str
    conditions: str
    description: str
    type: str
    properties: str
    metadata: str
    depends_on: str
    deletion_policy: str
    update_policy: str
    condition: str
    value: str


HOT_KEYS = Keys(
    "parameters", "resources", "outputs", "conditions", "description", "type", "properties",
    "metadata", "depends_on", "deletion_policy", "update_policy", "condition", "value",
)  # fmt: skip
CFN_KEYS = Keys(
    "Parameters", "Resources", "Outputs", "Conditions", "Description", "Type", "Properties",
    "Metadata", "DependsOn", "DeletionPolicy", "UpdatePolicy", "Condition", "Value",
)  # fmt: skip
POLICIES = ("Delete", "Retain", "Snapshot")


@dataclass(frozen=True)
class ParsedResource:
    name: str
    type: str
    properties: Any  # parsed tree
    metadata: Any
    update_policy: Any
    deletion_policy: Any  # a policy name or a parsed tree (get_param)
    explicit_depends_on: tuple[str, ...]
    condition: Any  # True, a condition name, or a parsed expression
    external_id: Any = None  # None, a string or a parsed tree (get_param)


@dataclass(frozen=True)
class ParsedOutput:
    name: str
    value: Any
    description: str
    condition: Any


@dataclass(frozen=True)
class Parsed:
    """A template's sections, checked and parsed."""

    version: Version
    keys: Keys
    description: str
    schemas: dict[str, ParamSchema]
    groups: list[dict[str, Any]]
    conditions: dict[str, Any]
    resources: dict[str, ParsedResource]
    outputs: dict[str, ParsedOutput]
    mappings: dict[str, Any]
    parser: Parser


def detect_version(raw: Mapping[str, Any]) -> Version:
    if "heat_template_version" in raw:
        return hot_version(raw["heat_template_version"])
    if "AWSTemplateFormatVersion" in raw:
        if raw["AWSTemplateFormatVersion"] != CFN_DATE:
            raise TemplateError(
                f"unknown version {raw['AWSTemplateFormatVersion']!r} (known: {CFN_DATE})",
                "AWSTemplateFormatVersion",
            )
        return VERSIONS["cfn"]
    if "HeatTemplateFormatVersion" in raw or "Resources" in raw:
        return VERSIONS["cfn"]
    raise TemplateError(
        "the template version is not given: set heat_template_version "
        "(HOT) or AWSTemplateFormatVersion (CloudFormation)"
    )


def _section_keys(version: Version) -> tuple[str, ...]:
    if version.kind == "cfn":
        return (
            "AWSTemplateFormatVersion", "HeatTemplateFormatVersion", "Description", "Mappings",
            "Parameters", "Resources", "Outputs", "Conditions",
        )  # fmt: skip
    keys = ("heat_template_version", "description", "parameter_groups", "parameters",
            "resources", "outputs")  # fmt: skip
    return keys + (("conditions",) if version.conditions else ())


def _resource_keys(version: Version) -> tuple[str, ...]:
    if version.kind == "cfn":
        return ("Type", "Properties", "Metadata", "DependsOn", "DeletionPolicy",
                "UpdatePolicy", "Description", "Condition")  # fmt: skip
    keys = ("type", "properties", "metadata", "depends_on", "deletion_policy",
            "update_policy", "description")  # fmt: skip
    return keys + (("external_id", "condition") if version.conditions else ())


def _section(raw: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TemplateError("must be a map", key)
    return value


def _mappings(raw: Mapping[str, Any]) -> dict[str, Any]:
    """CFN Mappings: name -> key -> {value key: value}; Fn::FindInMap reads two levels."""
    mappings = _section(raw, "Mappings")
    for name, entries in mappings.items():
        at = join_path("Mappings", name)
        if not isinstance(entries, dict):
            raise TemplateError("a mapping must be a map of keys to maps", at)
        for key, values in entries.items():
            if not isinstance(values, dict):
                raise TemplateError("must be a map of value keys to values", join_path(at, key))
    return mappings


def _only_keys(entry: Mapping[str, Any], allowed: tuple[str, ...], path: str) -> None:
    for key in entry:
        if key not in allowed:
            raise TemplateError(f"unknown key {key!r} (allowed: {', '.join(allowed)})", path)


def parse_sections(raw: Mapping[str, Any], files: Mapping[str, str]) -> Parsed:
    if not isinstance(raw, Mapping):
        raise TemplateError("the template must be a map")
    check_size(raw)
    version = detect_version(raw)
    _only_keys(raw, _section_keys(version), "")
    k = HOT_KEYS if version.kind == "hot" else CFN_KEYS
    description = raw.get(k.description) or ""
    if not isinstance(description, str):
        raise TemplateError("must be a string", k.description)

    if version.kind == "hot":
        schemas = parse_hot_parameters(raw.get("parameters"), version.modulo, version.param_tags)
    else:
        schemas = parse_cfn_parameters(raw.get("Parameters"))
    groups = _parameter_groups(raw.get("parameter_groups"), schemas)
    mappings = _mappings(raw) if version.kind == "cfn" else {}
    resources_raw = _section(raw, k.resources)
    if len(resources_raw) > limits.MAX_RESOURCES:
        raise TemplateError(f"more than {limits.MAX_RESOURCES} resources", k.resources)
    conditions_raw = _section(raw, k.conditions) if version.conditions else {}
    pseudo = PSEUDO_HOT if version.kind == "hot" else PSEUDO_CFN
    scope = Scope(
        kind=version.kind,
        version=version.date,
        parameters=frozenset(schemas) | frozenset(pseudo),
        resources=frozenset(resources_raw),
        conditions=frozenset(conditions_raw),
        files=dict(files),
        mappings=mappings,
    )
    parser = Parser(scope, version.table, version.label)
    conditions = {
        name: parser.condition(expr, join_path(k.conditions, name), 2)
        for name, expr in conditions_raw.items()
    }
    for name, expr in conditions.items():
        if isinstance(expr, str) and expr not in conditions:
            raise TemplateError(f"no condition named {expr!r}", join_path(k.conditions, name))
    resources = {
        name: _resource(name, body, version, k, parser) for name, body in resources_raw.items()
    }
    outputs = {
        name: _output(name, body, version, k, parser)
        for name, body in _section(raw, k.outputs).items()
    }
    _check_cycles(resources, k)
    return Parsed(
        version, k, description, schemas, groups, conditions, resources, outputs, mappings, parser
    )


def _resource(name: str, body: Any, version: Version, k: Keys, parser: Parser) -> ParsedResource:
    at = join_path(k.resources, name)
    if not isinstance(body, dict):
        raise TemplateError("a resource must be a map", at)
    _only_keys(body, _resource_keys(version), at)
    rtype = body.get(k.type)
    if not isinstance(rtype, str) or not rtype:
        raise TemplateError(f"a resource needs a {k.type} (a string)", at)
    depends = body.get(k.depends_on) or []
    if isinstance(depends, str):
        depends = [depends]
    if not isinstance(depends, list) or not all(isinstance(d, str) for d in depends):
        raise TemplateError(
            "must be a resource name or a list of them", join_path(at, k.depends_on)
        )
    for dep in depends:
        if dep not in parser.scope.resources:
            raise TemplateError(f"no resource named {dep!r}", join_path(at, k.depends_on))
    external = _external_id(body, rtype, bool(depends), parser, at)
    policy = body.get(k.deletion_policy, "Delete")
    policy_at = join_path(at, k.deletion_policy)
    if isinstance(policy, str):
        policy = check_policy(policy, version, policy_at)
    else:
        policy = parser.data(policy, policy_at, 2)
    props = body.get(k.properties)
    if props is not None and not isinstance(props, dict):
        raise TemplateError("must be a map", join_path(at, k.properties))
    metadata = body.get(k.metadata)
    if metadata is not None and not isinstance(metadata, dict):  # a function is a map too
        raise TemplateError("must be a map", join_path(at, k.metadata))
    return ParsedResource(
        name=name,
        type=rtype,
        properties=parser.data(props or {}, join_path(at, k.properties), 2),
        metadata=parser.data(body.get(k.metadata) or {}, join_path(at, k.metadata), 2),
        update_policy=parser.data(
            body.get(k.update_policy) or {}, join_path(at, k.update_policy), 2
        ),
        deletion_policy=policy,
        explicit_depends_on=tuple(depends),
        condition=_condition(body, k, parser, at),
        external_id=external,
    )


def _external_id(
    body: Mapping[str, Any], rtype: str, depends: bool, parser: Parser, at: str
) -> Any:
    """A resource's `external_id` (HOT 2016-10-14 on): a string or a function giving one.
    An external resource depends on nothing (Heat's rule); others may depend on it."""
    raw = body.get("external_id")
    if raw is None:
        return None
    path = join_path(at, "external_id")
    if depends:
        raise TemplateError(
            f"Invalid dependency with external {rtype} resource: {raw}",
            join_path(at, "depends_on"),
        )
    value = parser.data(raw, path, 2)
    if not isinstance(value, str | Function):
        raise TemplateError("must be a string (the id of an existing resource)", path)
    if next(dependencies_of(value, None), None) is not None:
        raise TemplateError("must not refer to a resource of the stack", path)
    return value


def check_policy(policy: Any, version: Version, path: str) -> str:
    if isinstance(policy, str):
        if policy in POLICIES:
            return policy
        if version.lower_policies and policy.capitalize() in POLICIES and policy.islower():
            return policy.capitalize()
    raise TemplateError(f"unknown deletion policy {policy!r} (known: {', '.join(POLICIES)})", path)


def _condition(body: Mapping[str, Any], k: Keys, parser: Parser, at: str) -> Any:
    if k.condition not in body:
        return True
    path = join_path(at, k.condition)
    cond = parser.condition(body[k.condition], path, 2)
    if isinstance(cond, str) and cond not in parser.scope.conditions:
        raise TemplateError(f"no condition named {cond!r}", path)
    if not isinstance(cond, str | bool | Function):
        raise TemplateError("must be a condition's name, a boolean or a condition", path)
    return cond


def _output(name: str, body: Any, version: Version, k: Keys, parser: Parser) -> ParsedOutput:
    at = join_path(k.outputs, name)
    if not isinstance(body, dict):
        raise TemplateError("an output must be a map", at)
    allowed = (k.description, k.value) + ((k.condition,) if version.conditions else ())
    _only_keys(body, allowed, at)
    description = body.get(k.description) or ""
    if not isinstance(description, str):
        raise TemplateError("must be a string", join_path(at, k.description))
    return ParsedOutput(
        name=name,
        value=parser.data(body.get(k.value), join_path(at, k.value), 2),
        description=description,
        condition=_condition(body, k, parser, at),
    )


def _check_cycles(resources: Mapping[str, ParsedResource], k: Keys) -> None:
    """Refuse resources that depend on each other in a cycle (every `if` branch counted)."""
    graph = graphlib.TopologicalSorter[str]()
    for r in resources.values():
        deps = set(r.explicit_depends_on) | set(dependencies_of(r.properties, None))
        deps |= set(dependencies_of(r.metadata, None))
        graph.add(r.name, *([] if r.external_id is not None else sorted(deps)))
    try:
        graph.prepare()
    except graphlib.CycleError as e:
        cycle = list(reversed(e.args[1]))
        raise TemplateError(
            "resources depend on each other in a cycle: " + " -> ".join(cycle), k.resources
        ) from None


def _parameter_groups(raw: Any, schemas: Mapping[str, ParamSchema]) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise TemplateError("must be a list of groups", "parameter_groups")
    seen: dict[str, int] = {}
    for i, group in enumerate(raw):
        at = join_path("parameter_groups", i)
        if not isinstance(group, dict):
            raise TemplateError("a parameter group must be a map", at)
        _only_keys(group, ("label", "description", "parameters"), at)
        names = group.get("parameters")
        if not isinstance(names, list):
            raise TemplateError("a parameter group needs a list of parameters", at)
        for name in names:
            if not isinstance(name, str) or name not in schemas:
                raise TemplateError(f"no parameter named {name!r}", join_path(at, "parameters"))
            if name in seen:
                raise TemplateError(
                    f"parameter {name!r} is already in group {seen[name]}",
                    join_path(at, "parameters"),
                )
            seen[name] = i
    return [dict(g) for g in raw]
