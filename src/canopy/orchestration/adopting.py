"""What a stack create with `adopt_stack_data` asks for, checked before anything is written.

`openstack stack adopt --adopt-file F NAME` sends the file's text (the JSON `stack abandon`
printed, or YAML) as `adopt_stack_data`. As in Heat, the template is the data's (a
`template` in the body is not used), the parameters are the data's environment's with the
request's on top, and every resource of the template is adopted rather than created: its
entry in the data's `resources` gives its physical id (resources/adopt.py). A template
with a type canopy cannot adopt is refused here, so nothing is written.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from canopy.domain.errors import InvalidRequest
from canopy.domain.text import check_text
from canopy.orchestration.nesting import load_yaml
from canopy.orchestration.resources.adopt import ADOPTERS
from canopy.orchestration.template import BoundTemplate


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


def check_adoptable(bound: BoundTemplate) -> None:
    """Every resource of the template is of a type canopy can adopt (400 otherwise)."""
    for name, d in sorted(bound.resources().items()):
        if d.type not in ADOPTERS:
            raise InvalidRequest(
                f"resources.{name}: adopting a {d.type} is not supported. Canopy adopts: "
                + ", ".join(sorted(ADOPTERS))
                + "."
            )
