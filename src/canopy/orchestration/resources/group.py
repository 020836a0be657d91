"""OS::Heat::ResourceGroup: `count` copies of `resource_def`, with `%index%` substituted.

Members are named by index ("0", "1", ...; rows `<group>.<index>`, see members.py). Names
listed in `removal_policies` (an index or a member's reference) are never used again (Heat's
blacklist), so a count of N is the first N unlisted indexes: lowering `count` removes the
highest indexes, and removing a named member and keeping the count makes a new one at the
next free index. A change of `resource_def` updates each member in place where its type
allows, and replaces it otherwise: all at once, or in the batches of the update_policy's
`rolling_update`; `batch_create` creates the members in batches (rolling.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from itertools import count as counter
from itertools import islice
from typing import Any

from canopy.domain.errors import InvalidRequest
from canopy.orchestration.nesting import resolve_type
from canopy.orchestration.resources import rolling
from canopy.orchestration.resources.base import Lookups, Progress, Prop, Step, updatable
from canopy.orchestration.resources.group_attrs import recorded
from canopy.orchestration.resources.members import (
    Wanted,
    converge,
    index_of,
    members_of,
    substitute,
)
from canopy.orchestration.resources.properties import typed
from canopy.orchestration.resources.update_policy import (
    BATCH_CREATE,
    Batching,
    policy_of,
    rolling_of,
)
from canopy.orchestration.states import Action, Desired
from canopy.store.models import StackResource

MAX_MEMBERS = 1000
DEF_KEYS = ("type", "properties", "metadata")


class ResourceGroup:
    name = "OS::Heat::ResourceGroup"
    description = "Creates one or more identically configured resources."
    open_properties = False
    properties: Mapping[str, Prop] = {
        "count": Prop("integer", "How many members.", default=1, update_allowed=True),
        "index_var": Prop(
            "string", "Replaced by each member's index in resource_def.", default="%index%"
        ),
        "resource_def": Prop(
            "map",
            "The members' type, properties and metadata.",
            required=True,
            update_allowed=True,
        ),
        "removal_policies": Prop(
            "list",
            "[{resource_list: [index or reference, ...]}]: members to remove, whose indexes "
            "are not used again.",
            default=[],
            update_allowed=True,
        ),
        "removal_policies_mode": Prop(
            "string",
            "append: add to the names removed before; update: replace them.",
            default="append",
            allowed=("append", "update"),
            update_allowed=True,
        ),
    }
    attributes: Mapping[str, str] = {
        "refs": "Each member's reference, in index order.",
        "refs_map": "Index -> reference.",
        "attributes": "[attributes, name]: index -> that attribute of each member.",
        "removed_rsrc_list": "Indexes removed by removal_policies.",
        "resource.{index}": "A member's reference; resource.{index}.{attr}: its attribute.",
        "{attr}": "Any other name: the list of that attribute of every member.",
    }

    def reference(self, res: StackResource) -> Any:
        return res.physical_resource_id or None

    def validate(self, props: Mapping[str, Any], known: Lookups) -> None:
        count = props.get("count")
        if count is not None and not 0 <= count <= MAX_MEMBERS:
            raise InvalidRequest(f"count must be between 0 and {MAX_MEMBERS}.")
        validate_member(props.get("resource_def"), props.get("index_var") or "", known)
        for policy in props.get("removal_policies") or []:
            if not isinstance(policy, Mapping) or not isinstance(
                policy.get("resource_list", []), list
            ):
                raise InvalidRequest("removal_policies: each is {resource_list: [...]}.")

    def in_place(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
        return updatable(self.properties, old, new)

    async def create(self, step: Step, res: StackResource) -> Progress:
        res.physical_resource_id = res.id
        await _apply_removal_policies(step, res)
        section = policy_of(res).get(BATCH_CREATE)
        count = int(res.properties.get("count") or 0)
        if section is not None and count:
            b = Batching(int(section["max_batch_size"]), 0, float(section["pause_time"]))
            rolling.start(res, rolling.plan(count, 0, b, extra_counts=False), b.pause)
        return await self._converge(step, res, fresh=True)

    async def update(self, step: Step, res: StackResource, new: dict[str, Any]) -> Progress:
        old, res.properties = res.properties, new
        await _apply_removal_policies(step, res)
        rolling.stop(res)  # what a failed update left is planned again
        b = rolling_of(self.name, policy_of(res))
        if b is not None:
            count = int(new.get("count") or 0)
            # Planned whenever a member is not of its definition (or failed), not only
            # when resource_def changed: a repeated update, or the repair of a failed
            # one, goes on in batches too.
            present, fine, due = await rolling.behind(
                step, res, self._define(res), self._names(res, count), _removed(res)
            )
            if due or old.get("resource_def") != new.get("resource_def"):
                batches = rolling.plan(count, present, b, extra_counts=False, updated=fine)
                if rolling.too_long(batches, b.pause, step):
                    return Progress.failure(rolling.TIMEOUT_MESSAGE)
                rolling.start(res, batches, b.pause)
        return await self._converge(step, res, fresh=True)

    async def delete(self, step: Step, res: StackResource) -> Progress:
        return await converge(step, res, [], fresh=True)

    async def check(self, step: Step, res: StackResource) -> Progress:
        if res.action == Action.DELETE:
            return await converge(step, res, [], fresh=False)
        return await self._converge(step, res, fresh=False)

    async def _converge(self, step: Step, res: StackResource, *, fresh: bool) -> Progress:
        if rolling.running(res) and res.action in (Action.CREATE, Action.UPDATE):
            progress = await rolling.run(
                step, res, self._define(res), self._order(res), self._fresh(res), first=fresh
            )
            if not progress.done:
                return progress
            fresh = False  # the last batch left the members wanted: this checks it
        progress = await converge(step, res, self._wanted(res), fresh=fresh)
        if progress.done:
            members = [m for m in await members_of(step, res) if m.desired == Desired.PRESENT]
            res.attributes = recorded(res, members)
        return progress

    def _names(self, res: StackResource, size: int) -> list[str]:
        """The first `size` indexes not removed by removal_policies."""
        return [str(i) for i in islice(self._allowed(res), size)]

    def _allowed(self, res: StackResource) -> Iterator[int]:
        removed = _removed(res)
        return (i for i in counter() if str(i) not in removed)

    def _wanted(self, res: StackResource) -> list[Wanted]:
        define = self._define(res)
        return [define(i) for i in self._names(res, int(res.properties.get("count") or 0))]

    def _define(self, res: StackResource) -> rolling.Define:
        d = res.properties["resource_def"]
        var = res.properties.get("index_var") or ""

        def define(n: str) -> Wanted:
            return Wanted(n, str(d.get("type")), substitute(d.get("properties") or {}, var, n))

        return define

    def _order(self, res: StackResource) -> rolling.Order:
        """Heat's order: members past the batch's size go first (removed), then the
        highest indexes of the target (replaced first); members kept past the target
        for min_in_service last (neither)."""
        target = int(res.properties.get("count") or 0)
        removed = _removed(res)

        def order(existing: list[str], cap: int) -> list[str]:
            at = {i: k for k, i in enumerate(self._names(res, cap))}

            def priority(index: str) -> int:
                k = at.get(index)
                if k is None:
                    return 0
                return target - k if k < target else cap

            return sorted((i for i in existing if i not in removed), key=priority)

        return order

    def _fresh(self, res: StackResource) -> rolling.Fresh:
        return rolling.counting(self._allowed(res))


def _removed(res: StackResource) -> set[str]:
    return set((res.data or {}).get("removed") or [])


def validate_member(d: Any, var: str, known: Lookups) -> None:
    """A member definition `{type, properties[, metadata]}` of a supported type whose
    properties fit it (those known now)."""
    from canopy.orchestration.resources import registry  # deferred: it imports this module

    if d is None:
        return  # not known yet
    if not isinstance(d, Mapping) or "type" not in d:
        raise InvalidRequest("the member definition must be a map with a type.")
    extra = set(d) - set(DEF_KEYS)
    if extra:
        raise InvalidRequest(f"Unknown key(s) in the member definition: {sorted(extra)}.")
    if not isinstance(d["type"], str):
        raise InvalidRequest("the member definition's type must be a string.")
    kind = registry.resource_type(resolve_type(known.registry, d["type"]), files=known.files)
    raw = d.get("properties")
    if kind.open_properties or raw is None:
        return
    props = typed("member", kind.properties, substitute(raw, var, "0"), partial=True)
    kind.validate(props, known)


async def _apply_removal_policies(step: Step, res: StackResource) -> None:
    from canopy.orchestration.resources import registry  # deferred: it imports this module

    p = res.properties
    removed: list[str] = (
        []
        if p.get("removal_policies_mode") == "update"
        else list((res.data or {}).get("removed") or [])
    )
    members = [m for m in await members_of(step, res) if m.desired == Desired.PRESENT]
    by_ref = {str(registry.row_type(m.type).reference(m)): index_of(res, m) for m in members}
    for policy in p.get("removal_policies") or []:
        for item in (policy or {}).get("resource_list") or []:
            idx = by_ref.get(str(item), str(item))
            if idx not in removed:
                removed.append(idx)
    res.data = {**(res.data or {}), "removed": removed}
