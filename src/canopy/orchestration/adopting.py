"""What a stack create with `adopt_stack_data` asks for, checked before anything is written.

`openstack stack adopt --adopt-file F NAME` sends the file's text (the JSON `stack abandon`
printed, or YAML) as `adopt_stack_data`. As in Heat, the template is the data's (a
`template` in the body is not used), the parameters are the data's environment's with the
request's on top, and every resource of the template is adopted rather than created: its
entry in the data's `resources` gives its physical id (resources/adopt.py; a group's or a
nested stack's entry holds its members' or child's entries, resources/adopt_tree.py). A
template with a type canopy cannot adopt, at any depth, is refused here, so nothing is
written.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from canopy.domain.errors import InvalidRequest
from canopy.domain.text import check_text
from canopy.orchestration.nesting import (
    MAX_DEPTH,
    STACK_TYPE,
    load_template,
    load_yaml,
    mapped_types,
    registry_of,
    resolve_type,
)
from canopy.orchestration.resolving import NothingLive
from canopy.orchestration.resources.adopt import ADOPTERS
from canopy.orchestration.resources.adopt_tree import GROUP, MEMBER_TYPES
from canopy.orchestration.resources.registry import is_nested, row_type
from canopy.orchestration.template import BoundTemplate, TemplateError, limits

# The data holds the template (nested up to the template's own limit) and the resources'
# entries (two levels per nested stack, then each one's resource_data): twice the
# template's limit is room for both, and far below what the JSON encoder recurses to.
MAX_DATA_DEPTH = 2 * limits.MAX_DEPTH
# Nested templates the check follows for one request (each distinct one once): as many as
# a stack may have resources, nested stacks included (Heat's max_resources_per_stack).
MAX_NESTED_CHECKS = limits.MAX_RESOURCES


@dataclass(frozen=True)
class AdoptData:
    """The parts of an adopt request canopy reads."""

    template: dict[str, Any]
    files: dict[str, Any]
    parameters: dict[str, Any]
    resources: dict[str, Any]


def _invalid(why: str) -> InvalidRequest:
    return InvalidRequest(f"Invalid adopt data: {why}")


def read_adopt_data(raw: Any) -> AdoptData:
    """The adopt data from its text (JSON or YAML) or a map; 400 with why if it is not."""
    data: Any = raw
    if isinstance(raw, str):
        try:
            data = json.loads(raw)
        except RecursionError:
            raise _invalid("it is nested too deep.") from None
        except ValueError:
            data = load_yaml(raw, "Invalid adopt data", "it")
        # Decoded past the edge's text checks: made to pass them here (domain/text.py).
        check_text(data, "adopt_stack_data")
    _check_plain(data)
    if not isinstance(data, Mapping):
        raise _invalid("it must be a map (the data `stack abandon` gives).")
    template = data.get("template")
    if not isinstance(template, Mapping):
        raise _invalid("it has no template.")
    resources, files = _part(data, "resources"), _part(data, "files")
    parameters = _part(_part(data, "environment"), "parameters")
    return AdoptData(dict(template), files, parameters, resources)


def _check_plain(data: Any) -> None:
    """400 unless `data` is JSON's types only, finite, and nested at most MAX_DATA_DEPTH
    deep: it is stored in JSON columns (the stack's adopt data, rows' properties), whose
    encoder recurses and refuses anything else. Walked without recursion."""
    stack: list[tuple[Any, str, int]] = [(data, "adopt_stack_data", 0)]
    while stack:
        node, where, depth = stack.pop()
        if depth > MAX_DATA_DEPTH:
            raise _invalid(f"it is nested more than {MAX_DATA_DEPTH} levels deep ({where}).")
        if isinstance(node, Mapping):
            stack.extend((v, f"{where}.{k}", depth + 1) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, f"{where}[{i}]", depth + 1) for i, v in enumerate(node))
        elif isinstance(node, float) and not math.isfinite(node):
            raise _invalid(f"{where}: {node} is not a number JSON can hold.")
        elif not isinstance(node, str | int | float | bool | None):
            raise _invalid(f"{where}: a {type(node).__name__} is not a JSON value.")


def _part(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    """A map in the data (absent or null: empty)."""
    found = data.get(key)
    if found is None:
        return {}
    if not isinstance(found, Mapping):
        raise _invalid(f"{key} must be a map.")
    return dict(found)


def check_adoptable(bound: BoundTemplate, environment: Mapping[str, Any] | None = None) -> None:
    """Every resource of the template, its groups' members and its nested stacks' resources
    (recursively) is of a type canopy can adopt (400 naming the first that is not).

    The work is bounded: a file is parsed once, a nested template is followed once for each
    distinct (template, depth, registry) (what its check depends on: a file of k resources
    of its own type is followed MAX_DEPTH times, not k^MAX_DEPTH), and past
    MAX_NESTED_CHECKS nested templates the request is refused."""
    walk = _Walk(bound.template.files)
    registry = registry_of(environment)
    for name, d in sorted(bound.resources().items()):
        try:
            props = bound.resolve(d.properties, NothingLive())
        except TemplateError:
            props = None  # refers to another resource: read literally below
        props = props if isinstance(props, Mapping) else d.properties
        walk.check(d.type, props, f"resources.{name}", registry, 0)


def _refused(where: str, rtype: str, what: str = "") -> InvalidRequest:
    return InvalidRequest(
        f"{where}: adopting a {rtype}{what} is not supported. Canopy adopts: "
        + ", ".join(sorted(ADOPTERS))
        + f", {GROUP.name} of those, {STACK_TYPE} and template resources made of these."
    )


@dataclass
class _Walk:
    """One request's check of the nested templates: what it has parsed and followed."""

    files: Mapping[str, Any]
    parsed: dict[str, dict[str, Any]] = field(default_factory=dict)
    followed: set[tuple[str, int, frozenset[tuple[str, str]]]] = field(default_factory=set)
    count: int = 0

    def file(self, name: str, where: str) -> dict[str, Any]:
        """The template file `name`, parsed once."""
        if name not in self.parsed:
            self.parsed[name] = load_template(self.files[name], where)
        return self.parsed[name]

    def check(
        self, rtype: str, props: Any, where: str, registry: Mapping[str, str], depth: int
    ) -> None:
        if rtype in ADOPTERS:
            return
        props = props if isinstance(props, Mapping) else {}
        if rtype == GROUP.name:
            member = _literal(props.get("resource_def"), self.files)
            mtype = member.get("type") if isinstance(member, Mapping) else None
            mtype = resolve_type(registry, mtype) if isinstance(mtype, str) else None
            if mtype not in MEMBER_TYPES:
                raise _refused(f"{where}.properties.resource_def", GROUP.name, f" of {mtype}")
            return
        if depth >= MAX_DEPTH:
            return  # deeper than a stack may nest: validation refuses it
        source: str | None = None
        named: Any = None
        if rtype == STACK_TYPE:
            given = props.get("template")
            raw = _literal(given, self.files)
            if not isinstance(raw, (str, Mapping)):
                raise _refused(where, rtype, " whose template is not given literally")
            named = given.get("get_file") if isinstance(given, Mapping) else None
            key = f"get_file:{named}" if isinstance(named, str) else None
        elif is_nested(row_type(rtype)) and rtype in self.files:
            source = key = rtype
        else:
            raise _refused(where, rtype)
        inner = {k: v for k, v in registry.items() if source is None or v != source}
        if key is not None:
            seen = (key, depth, frozenset(inner.items()))
            if seen in self.followed:
                return  # checked already: it passed
            self.followed.add(seen)
        self.count += 1
        if self.count > MAX_NESTED_CHECKS:
            raise _invalid(
                f"{where}: more than {MAX_NESTED_CHECKS} nested templates to check (a stack "
                f"has at most {limits.MAX_RESOURCES} resources, nested stacks included)."
            )
        if source is not None:
            template = self.file(source, f"files.{source}")
        elif isinstance(named, str) and named in self.files:
            template = self.file(named, f"{where}.properties.template")
        else:
            template = load_template(raw, f"{where}.properties.template")
        for section, tkey, pkey in (
            ("resources", "type", "properties"),
            ("Resources", "Type", "Properties"),
        ):
            found = mapped_types(template, inner).get(section)
            for name, body in sorted((found if isinstance(found, Mapping) else {}).items()):
                if not isinstance(body, Mapping) or not isinstance(body.get(tkey), str):
                    continue  # the nested template's own validation names it
                at = f"{where}: resources.{name}"
                self.check(body[tkey], body.get(pkey), at, inner, depth + 1)


def _literal(value: Any, files: Mapping[str, Any]) -> Any:
    """`value`, or the file a literal `{get_file: NAME}` names."""
    if isinstance(value, Mapping) and set(value) == {"get_file"}:
        return files.get(str(value["get_file"]))
    return value
