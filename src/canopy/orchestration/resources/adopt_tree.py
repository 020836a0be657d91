"""Adopting groups and nested stacks: what holds other resources adopts them one by one.

Heat's abandon data gives a group or a nested stack (OS::Heat::Stack, a template resource)
the data of the stack behind it: the entry's `resources` are its members' or its child
stack's resources, each an entry as a stack's own are, and Heat's adopt hands that entry
to the nested stack it creates. Canopy does the same with its own shapes: a
ResourceGroup's members are rows of the stack (members.py), each adopted from the entry's
`resources` by index; a nested stack's child is a stack row written with action ADOPT and
those entries as its adopt data, walked like any adopt. Anything that holds nothing
outside the stack (the leaves of adopt.py) is adopted as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from canopy.orchestration.resources.adopt import ADOPTERS, adopt_leaf
from canopy.orchestration.resources.base import Progress, Step
from canopy.orchestration.resources.group import ResourceGroup
from canopy.orchestration.resources.nested import NestedBase
from canopy.orchestration.resources.registry import row_type
from canopy.store.models import StackResource

GROUP = ResourceGroup()
# What a group adopts its members as: the leaves only (a group of groups or of nested
# stacks is refused at the API).
MEMBER_TYPES = frozenset(ADOPTERS)


def _resources_of(raw: Any, what: str) -> Mapping[str, Any] | str:
    """The entry's `resources` map, or why there is none."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("resources"), Mapping):
        return (
            f"The adopt data has no resources for this {what} (the entry's `resources`, as "
            "`stack abandon` writes them)."
        )
    found: Mapping[str, Any] = raw["resources"]
    return found


async def _group(step: Step, res: StackResource, raw: Any) -> Progress:
    found = _resources_of(raw, "group")
    if isinstance(found, str):
        return Progress.failure(found)
    data = raw.get("resource_data") if isinstance(raw, Mapping) else None
    removed = data.get("removed") if isinstance(data, Mapping) else None
    if isinstance(removed, list) and all(isinstance(r, str) for r in removed):
        # Indexes removal_policies took out before: not used again (Heat's blacklist).
        res.data = {**(res.data or {}), "removed": list(removed)}
    # The group's steps read its members' entries while its action is ADOPT (members.py).
    return await GROUP.create(step, res)


async def _nested(step: Step, res: StackResource, kind: NestedBase, raw: Any) -> Progress:
    found = _resources_of(raw, "nested stack")
    if isinstance(found, str):
        return Progress.failure(found)
    return await kind.start(step, res, found)


def adoptable(type_name: str) -> bool:
    """Whether a resource row of this type can be adopted (a file name: a template
    resource)."""
    if type_name in ADOPTERS or type_name == GROUP.name:
        return True
    return isinstance(row_type(type_name), NestedBase)


async def adopt(step: Step, res: StackResource, raw: Any) -> Progress:
    """Adopt into `res` what the adopt data's entry `raw` names."""
    if res.type == GROUP.name:
        return await _group(step, res, raw)
    kind = row_type(res.type)
    if isinstance(kind, NestedBase):
        return await _nested(step, res, kind, raw)
    return await adopt_leaf(step, res, raw)
