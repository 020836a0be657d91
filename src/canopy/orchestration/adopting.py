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
from collections.abc import Mapping
from dataclasses import dataclass
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
from canopy.orchestration.template import BoundTemplate, TemplateError


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
    if not isinstance(data, Mapping):
        raise _invalid("it must be a map (the data `stack abandon` gives).")
    template = data.get("template")
    if not isinstance(template, Mapping):
        raise _invalid("it has no template.")
    resources, files = _part(data, "resources"), _part(data, "files")
    parameters = _part(_part(data, "environment"), "parameters")
    return AdoptData(dict(template), files, parameters, resources)


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
    (recursively) is of a type canopy can adopt (400 naming the first that is not)."""
    registry = registry_of(environment)
    files = bound.template.files
    for name, d in sorted(bound.resources().items()):
        try:
            props = bound.resolve(d.properties, NothingLive())
        except TemplateError:
            props = None  # refers to another resource: read literally below
        props = props if isinstance(props, Mapping) else d.properties
        _check(d.type, props, f"resources.{name}", files, registry, 0)


def _refused(where: str, rtype: str, what: str = "") -> InvalidRequest:
    return InvalidRequest(
        f"{where}: adopting a {rtype}{what} is not supported. Canopy adopts: "
        + ", ".join(sorted(ADOPTERS))
        + f", {GROUP.name} of those, {STACK_TYPE} and template resources made of these."
    )


def _check(
    rtype: str, props: Any, where: str, files: Mapping[str, Any], registry: Mapping[str, str],
    depth: int,
) -> None:  # fmt: skip
    if rtype in ADOPTERS:
        return
    props = props if isinstance(props, Mapping) else {}
    if rtype == GROUP.name:
        member = _literal(props.get("resource_def"), files)
        mtype = member.get("type") if isinstance(member, Mapping) else None
        mtype = resolve_type(registry, mtype) if isinstance(mtype, str) else None
        if mtype not in MEMBER_TYPES:
            raise _refused(f"{where}.properties.resource_def", GROUP.name, f" of {mtype}")
        return
    if depth >= MAX_DEPTH:
        return  # deeper than a stack may nest: validation refuses it
    if rtype == STACK_TYPE:
        raw = _literal(props.get("template"), files)
        if not isinstance(raw, (str, Mapping)):
            raise _refused(where, rtype, " whose template is not given literally")
        template, source = load_template(raw, f"{where}.properties.template"), None
    elif is_nested(row_type(rtype)) and rtype in files:
        template, source = load_template(files[rtype], f"files.{rtype}"), rtype
    else:
        raise _refused(where, rtype)
    inner = {k: v for k, v in registry.items() if source is None or v != source}
    for section, tkey, pkey in (
        ("resources", "type", "properties"),
        ("Resources", "Type", "Properties"),
    ):
        found = mapped_types(template, inner).get(section)
        for name, body in sorted((found if isinstance(found, Mapping) else {}).items()):
            if not isinstance(body, Mapping) or not isinstance(body.get(tkey), str):
                continue  # the nested template's own validation names it
            at = f"{where}: resources.{name}"
            _check(body[tkey], body.get(pkey), at, files, inner, depth + 1)


def _literal(value: Any, files: Mapping[str, Any]) -> Any:
    """`value`, or the file a literal `{get_file: NAME}` names."""
    if isinstance(value, Mapping) and set(value) == {"get_file"}:
        return files.get(str(value["get_file"]))
    return value
