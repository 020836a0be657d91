"""Checking nested templates before anything exists (what the API refuses with 400).

A nested template is parsed, its resources' types checked and, when every parameter the
parent gives it is known now, bound and checked like a stack's own template, recursively:
at most `MAX_DEPTH` levels (a template that includes itself is refused, not followed) and
at most `MAX_RESOURCES` resources over the whole tree (Heat's max_resources_per_stack), so
the work a request can cause is bounded.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from canopy.domain.errors import InvalidRequest
from canopy.orchestration.binding import bind_stack
from canopy.orchestration.lookups import constraint_check
from canopy.orchestration.nesting import MAX_DEPTH, load_template, mapped_types, registry_of
from canopy.orchestration.resolving import NothingLive
from canopy.orchestration.resources.base import Lookups, ResourceType
from canopy.orchestration.resources.nested import NestedStack
from canopy.orchestration.resources.properties import typed
from canopy.orchestration.resources.registry import resource_type
from canopy.orchestration.template import (
    BoundTemplate,
    ResourceDefinition,
    StackIdentity,
    TemplateError,
    parse_template,
)
from canopy.orchestration.tree_limit import LIMIT_MESSAGE

MAX_RESOURCES = 1000
MAX_TEMPLATE_BYTES = 8 << 20  # nested template text checked per request, in total
Checker = Callable[[BoundTemplate, Lookups, "Tree"], None]


@dataclass
class Tree:
    """Where a check is in the tree of nested templates, and how much it has seen."""

    depth: int = 0
    resources: int = 0
    environment: Mapping[str, Any] | None = None
    template_bytes: int = 0
    # The external resources the tree names (where, type, id): their existence is read
    # from the database by the caller, in one query per type.
    externals: list[tuple[str, str, str]] = field(default_factory=list)
    # At an update, the stack's autoscaling groups now: name -> (members, desired size
    # they were made with); a group whose desired size is unchanged keeps its members.
    kept: Mapping[str, tuple[int, Any]] = field(default_factory=dict)

    def read(self, raw: Any) -> None:
        """Count a nested template's size: a file used 1000 times is checked 1000 times."""
        self.template_bytes += len(raw) if isinstance(raw, str) else len(json.dumps(raw))
        if self.template_bytes > MAX_TEMPLATE_BYTES:
            raise InvalidRequest(
                f"The nested templates are too large: more than {MAX_TEMPLATE_BYTES} bytes "
                "in total over every nested stack."
            )

    def count(self, n: int) -> None:
        self.resources += n
        if self.resources > MAX_RESOURCES:
            raise InvalidRequest(LIMIT_MESSAGE)


def check_nested(
    bound: BoundTemplate,
    d: ResourceDefinition,
    kind: ResourceType,
    known: Lookups,
    tree: Tree,
    check: Checker,
) -> None:
    """Check the nested template of resource `d` (`check` checks a bound template)."""
    where = f"resources.{d.name}"
    if tree.depth + 1 > MAX_DEPTH:
        raise InvalidRequest(
            f"{where}: Recursion depth exceeds {MAX_DEPTH} (max_nested_stack_depth)."
        )
    try:
        raw = bound.resolve(d.properties, NothingLive())
    except TemplateError:
        if d.depends_on:
            return  # may hold once the resources it refers to exist
        raise
    files = bound.template.files
    source: str | None = None
    if isinstance(kind, NestedStack):
        props = typed(d.name, kind.properties, raw, partial=True)
        try:
            kind.validate(props, known)
        except InvalidRequest as e:
            raise InvalidRequest(f"Property error: {where}.properties: {e}") from None
        if props.get("template") is None:
            return  # known only once what it refers to exists
        tree.read(props["template"])
        template = load_template(props["template"], f"{where}.properties.template")
        params = dict(props.get("parameters") or {})
    else:
        if raw is not None and not isinstance(raw, Mapping):
            raise InvalidRequest(f"{where}.properties: the properties must be a map.")
        source = d.type
        tree.read(files[source])
        template = load_template(files[source], f"files.{source}")
        params = dict(raw or {})
    registry = {
        k: v for k, v in registry_of(tree.environment).items() if source is None or v != source
    }
    child_env = {"resource_registry": registry}
    try:
        parsed = parse_template(mapped_types(template, registry), files)
    except TemplateError as e:
        raise InvalidRequest(f"{where}: the nested template: {e}") from None
    if source is not None:
        declared = {p.name for p in parsed.parameter_infos()}
        unknown = sorted(set(params) - declared)
        if unknown:
            raise InvalidRequest(f"{where}.properties: Unknown Property {unknown[0]}")
    child = Tree(tree.depth + 1, tree.resources, child_env, tree.template_bytes, tree.externals)
    if any(v is None for v in params.values()):
        # Some values come from resources not made yet: check what can be checked.
        for name, rtype in parsed.resource_types().items():
            resource_type(rtype, f"{where}: resources.{name}", files)
        child.count(len(parsed.resource_types()))
    else:
        identity = StackIdentity(
            f"{bound.identity.name}-{d.name}", "", bound.identity.project_id, bound.identity.region
        )
        try:
            nested = bind_stack(
                template, files, child_env, params, identity, constraint_check(known)
            )
            check(nested, known, child)
        except (TemplateError, InvalidRequest) as e:
            raise InvalidRequest(f"{where}: the nested template: {e}") from None
    tree.resources, tree.template_bytes = child.resources, child.template_bytes
