"""Checking a stack's template before anything exists: what the API refuses with 400."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from canopy.domain.errors import InvalidRequest
from canopy.orchestration import deletion_policy, external, nesting_checks
from canopy.orchestration.nesting import load_template, mapped_types, registry_of, resolve_type
from canopy.orchestration.resolving import NothingLive
from canopy.orchestration.resources.base import Lookups
from canopy.orchestration.resources.properties import typed
from canopy.orchestration.resources.registry import is_nested, resource_type
from canopy.orchestration.resources.software_deployment import DEPLOYMENT_TYPES
from canopy.orchestration.resources.update_policy import check_policy
from canopy.orchestration.template import (
    BoundTemplate,
    ResourceDefinition,
    TemplateError,
    parse_template,
)
from canopy.orchestration.template.hot_functions import GetResource
from canopy.orchestration.tree_limit import LIMIT_MESSAGE

# A group's members at create, by type: the property giving how many, then its fallback.
GROUP_SIZES = {
    "OS::Heat::ResourceGroup": ("count", "count"),
    "OS::Heat::AutoScalingGroup": ("desired_capacity", "min_size"),
    "AWS::AutoScaling::AutoScalingGroup": ("DesiredCapacity", "MinSize"),
}
# The property holding a group's member definition (its `type` may be a nested template).
MEMBER_DEFS = {"OS::Heat::ResourceGroup": "resource_def", "OS::Heat::AutoScalingGroup": "resource"}

MAX_RESOURCES = 1000


def check_resources(
    bound: BoundTemplate, known: Lookups, tree: nesting_checks.Tree | None = None
) -> None:
    """Every resource's type is supported and its properties fit it, as far as they are
    known now: a value that refers to another resource is checked when it is created."""
    defs = bound.resources()
    if len(defs) > MAX_RESOURCES:
        raise InvalidRequest(LIMIT_MESSAGE)
    if tree is None:
        tree = nesting_checks.Tree()
    tree.count(len(defs))
    known = replace(
        known, files=frozenset(bound.template.files), registry=registry_of(tree.environment)
    )
    for name, d in defs.items():
        kind = resource_type(d.type, f"resources.{name}", bound.template.files)
        deletion_policy.check(kind, d.type, d.deletion_policy, f"resources.{name}")
        _check_update_policy(bound, d)
        if d.external_id is not None:
            # Its properties are not used; that it exists is checked by the caller.
            external.check_type(d.type, f"resources.{name}")
            tree.externals.append((f"resources.{name}", d.type, d.external_id))
            continue
        if is_nested(kind):
            nesting_checks.check_nested(bound, d, kind, known, tree, check_resources)
            continue
        if kind.open_properties:
            continue
        try:
            raw = bound.resolve(d.properties, NothingLive())
        except TemplateError:
            if d.depends_on or bound.unknown:
                # May hold once the resources it refers to exist, or once the parameters
                # validated without a value have one (Heat's validate checks no values then).
                continue
            raise
        props = typed(name, kind.properties, raw, partial=True)
        if d.type in GROUP_SIZES:
            first, fallback = GROUP_SIZES[d.type]
            now = tree.kept.get(name) if tree.depth == 0 else None
            size = _member_size(props, d.type, bound.template.files, tree.environment)
            if now is not None and props.get(first) == now[1]:
                tree.count(now[0] * size)
            else:
                tree.count(_members(props, first, fallback) * size)
        try:
            kind.validate(props, known)
        except InvalidRequest as e:
            raise InvalidRequest(f"Property error: resources.{name}.properties: {e}") from None
        if d.type in MEMBER_DEFS:
            _check_member_template(props, d.type, bound.template.files, tree.environment, name)
    _check_deployed_servers(bound, defs)


def _check_deployed_servers(bound: BoundTemplate, defs: Mapping[str, ResourceDefinition]) -> None:
    """Heat's SoftwareDeployment.validate: a server of the template that deployments name
    (get_resource) must have user_data_format SOFTWARE_CONFIG, or no agent would read them."""
    for name, d in defs.items():
        if d.type not in DEPLOYMENT_TYPES or not isinstance(d.properties, Mapping):
            continue
        ref = d.properties.get("server")
        target = ref.args if isinstance(ref, GetResource) else None
        server = defs.get(target) if isinstance(target, str) else None
        if server is None or server.type != "OS::Nova::Server":
            continue
        try:
            props = bound.resolve(server.properties, NothingLive())
        except TemplateError:
            continue  # refers to what is not there yet
        fmt = props.get("user_data_format") if isinstance(props, Mapping) else None
        if (fmt or "HEAT_CFNTOOLS") != "SOFTWARE_CONFIG":
            raise InvalidRequest(
                f"Property error: resources.{name}: Resource {target}'s property "
                "user_data_format should be set to SOFTWARE_CONFIG since there are software "
                "deployments on it."
            )


def _check_update_policy(bound: BoundTemplate, d: ResourceDefinition) -> None:
    """The resource's update_policy, as far as it is known now (update_policy.py)."""
    if not d.update_policy:
        return
    try:
        policy = bound.resolve(d.update_policy, NothingLive())
    except TemplateError:
        if d.depends_on:
            return  # refers to a resource: checked when the resource is made
        raise
    check_policy(d.type, policy, f"resources.{d.name}.update_policy")


def _check_member_template(
    props: Any,
    group_type: str,
    files: Mapping[str, Any],
    environment: Mapping[str, Any] | None,
    name: str,
) -> None:
    """A group whose members are a template file: that template's resource types are
    supported (Heat's group validates its nested stack), else the group would only fail
    once its first member is made."""
    spec = props.get(MEMBER_DEFS[group_type])
    member_type = spec.get("type") if isinstance(spec, Mapping) else None
    if not isinstance(member_type, str):
        return
    registry = registry_of(environment)
    source = resolve_type(registry, member_type)
    if source not in files:
        return
    where = f"resources.{name}.properties.{MEMBER_DEFS[group_type]}"
    template = load_template(files[source], f"files.{source}")
    own = {k: v for k, v in registry.items() if v != source}
    try:
        parsed = parse_template(mapped_types(template, own), files)
    except TemplateError as e:
        raise InvalidRequest(f"{where}: the member template: {e}") from None
    for rname, rtype in parsed.resource_types().items():
        resource_type(rtype, f"{where}: the member template: resources.{rname}", files)


def _members(props: Any, first: str, fallback: str) -> int:
    """How many members a group's properties ask for (0 where not known now); each is a
    resource of the tree, as in Heat, where they are the resources of its nested stack."""
    for key in (first, fallback):
        value = props.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return max(0, value)
        if isinstance(value, str) and value.isdigit():
            return int(value)
    return 1 if first == "count" else 0


def _member_size(
    props: Any, group_type: str, files: Mapping[str, Any], environment: Mapping[str, Any] | None
) -> int:
    """One member's resources: its own row and, for a nested template, that template's
    resources (one level: a template nested in it again is not multiplied)."""
    spec = props.get(MEMBER_DEFS.get(group_type, ""))
    member_type = spec.get("type") if isinstance(spec, Mapping) else None
    if not isinstance(member_type, str):
        return 1
    source = resolve_type(registry_of(environment), member_type)
    if source not in files:
        return 1
    try:
        template = load_template(files[source], f"files.{source}")
    except InvalidRequest:
        return 1  # refused where the member is checked
    resources = template.get("resources")
    return 1 + (len(resources) if isinstance(resources, Mapping) else 0)
