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
from canopy.orchestration.nesting import load_template
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
            try:
                data = load_template(raw, "adopt_stack_data")
            except InvalidRequest as e:
                raise _invalid(str(e)) from None
    if not isinstance(data, Mapping):
        raise _invalid("it must be a map (the data `stack abandon` gives).")
    template = data.get("template")
    if not isinstance(template, Mapping):
        raise _invalid("it has no template.")
    resources = data.get("resources") or {}
    files = data.get("files") or {}
    env = data.get("environment") or {}
    if not isinstance(resources, Mapping) or not isinstance(files, Mapping):
        raise _invalid("resources and files must be maps.")
    if not isinstance(env, Mapping) or not isinstance(env.get("parameters") or {}, Mapping):
        raise _invalid("environment and its parameters must be maps.")
    return AdoptData(
        template=dict(template),
        files=dict(files),
        parameters=dict(env.get("parameters") or {}),
        resources=dict(resources),
    )


def check_adoptable(bound: BoundTemplate) -> None:
    """Every resource of the template is of a type canopy can adopt (400 otherwise)."""
    for name, d in sorted(bound.resources().items()):
        if d.type not in ADOPTERS:
            raise InvalidRequest(
                f"resources.{name}: adopting a {d.type} is not supported. Canopy adopts: "
                + ", ".join(sorted(ADOPTERS))
                + "."
            )
