"""OS::Heat::AutoScalingGroup: members of one `resource` definition, between min and max.

Its capacity is `desired_capacity` (else `min_size`) at create, then whatever scaling
policies (scaling.py) or a template update set it to. Scaling out adds members at new
indexes: each is an ordinary canopy server placed by the scheduler, so new members burst
to public clouds when private is full. Scaling in is canopy's own rule: the members on the
most expensive tier go first (the cloud's tier, then the price per hour), then the newest;
a member not placed yet goes before any running one. A member that is a nested stack (a
template file, OS::Heat::Stack) or a group costs what its servers cost (member_cost.py).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

from canopy.domain.errors import InvalidRequest
from canopy.orchestration.resources import cooldown, rolling
from canopy.orchestration.resources.base import Lookups, Progress, Prop, Step, updatable
from canopy.orchestration.resources.group import validate_member
from canopy.orchestration.resources.group_attrs import recorded
from canopy.orchestration.resources.member_cost import UNPLACED_TIER, member_costs
from canopy.orchestration.resources.members import Wanted, converge, index_of, members_of
from canopy.orchestration.resources.update_policy import (
    ROLLING_FIELDS,
    Batching,
    batching,
    check_section,
)
from canopy.orchestration.states import Action, Desired
from canopy.store.models import StackResource

MAX_SIZE = 1000
OS_GROUP = "OS::Heat::AutoScalingGroup"
AWS_GROUP = "AWS::AutoScaling::AutoScalingGroup"
GROUP_TYPES = (OS_GROUP, AWS_GROUP)  # what a scaling policy may scale


class GroupSteps(ABC):
    """What both autoscaling group types do the same way: delete all members, and check
    (carry on) toward the members their `_converge` wants."""

    async def delete(self, step: Step, res: StackResource) -> Progress:
        return await converge(step, res, [], fresh=True)

    async def check(self, step: Step, res: StackResource) -> Progress:
        if res.action == Action.DELETE:
            return await converge(step, res, [], fresh=False)
        data = dict(res.data or {})
        fresh = bool(data.pop("retry_failed", False))  # the first step of a scaling
        res.data = data
        return await self._ended(step, res, await self._converge(step, res, fresh=fresh))

    @staticmethod
    async def _ended(step: Step, res: StackResource, progress: Progress) -> Progress:
        """`progress` of the group's action; when it has ended, a cooldown starts now."""
        if progress.done or progress.failed is not None:
            own = bounds(res)[2]
            cooldown.finished(res, step.clock.now(), resized=progress.done, own=own)
        return progress

    @abstractmethod
    async def _converge(self, step: Step, res: StackResource, *, fresh: bool) -> Progress: ...

    @abstractmethod
    def _batching(self, res: StackResource) -> Batching | None:
        """The group's rolling update (None: all at once); InvalidRequest if malformed."""

    async def _plan(self, step: Step, res: StackResource, define: rolling.Define) -> str | None:
        """Plan a rolling update of the members (after `resize` chose them) when some are
        not of their definition or failed (an update, its repair, a scaling after a failed
        one): Heat's instance-group batches from the members there are to the group's
        size. The reason it is refused, if it is."""
        try:
            b = self._batching(res)
        except InvalidRequest as e:
            return str(e)
        if b is None:
            return None
        wanted = list((res.data or {}).get("members") or [])
        present, fine, due = await rolling.behind(step, res, define, wanted, ())
        if not due:
            return None
        size = capacity(res)
        batches = rolling.plan(size, present, b, extra_counts=True, updated=fine)
        if rolling.too_long(batches, b.pause, step):
            return rolling.TIMEOUT_MESSAGE
        leaving = {index_of(res, m) for m in await members_of(step, res)} - set(wanted)
        rolling.start(res, batches, b.pause, track=True, target=size, leaving=leaving)
        return None

    async def _members(
        self, step: Step, res: StackResource, define: rolling.Define, *, fresh: bool
    ) -> Progress:
        """Converge on the members: the batch under way of a rolling update, then (or
        without one) all of `data["members"]`. A new update or scaling (`fresh`) plans
        one first if it is due."""
        if fresh and res.action == Action.UPDATE and not rolling.running(res):
            refused = await self._plan(step, res, define)
            if refused is not None:
                return Progress.failure(refused)
        if rolling.running(res) and res.action in (Action.CREATE, Action.UPDATE):
            progress = await rolling.run(
                step, res, define, _oldest_first(res), _fresh(res), first=fresh
            )
            if not progress.done:
                return progress
            fresh = False  # the last batch left the members wanted: this checks it
        wanted = [define(i) for i in (res.data or {}).get("members") or []]
        return await converge(step, res, wanted, fresh=fresh)


def _oldest_first(res: StackResource) -> rolling.Order:
    """Members no longer wanted first (removed), then the oldest (replaced first)."""

    def order(existing: list[str], cap: int) -> list[str]:
        at = {m: k for k, m in enumerate((res.data or {}).get("members") or [])}
        return sorted(existing, key=lambda i: (i in at, at.get(i, -1)))

    return order


def _fresh(res: StackResource) -> rolling.Fresh:
    """New member indexes from the group's counter (`data["next"]`), which they advance."""

    def fresh(n: int, taken: set[str]) -> list[str]:
        data = dict(res.data or {})
        nxt = int(data.get("next", 0))
        out: list[str] = []
        while len(out) < n:
            if str(nxt) not in taken:
                out.append(str(nxt))
            nxt += 1
        data["next"] = nxt
        res.data = data
        return out

    return fresh


class AutoScalingGroup(GroupSteps):
    name = OS_GROUP
    description = (
        "A group whose size scaling policies change; scaling in removes members from the "
        "most expensive tier first."
    )
    open_properties = False
    properties: Mapping[str, Prop] = {
        "min_size": Prop("integer", "Fewest members.", required=True, update_allowed=True),
        "max_size": Prop("integer", "Most members.", required=True, update_allowed=True),
        "desired_capacity": Prop(
            "integer", "Members wanted now (default min_size).", update_allowed=True
        ),
        "cooldown": Prop(
            "integer", "Seconds after a scaling before another is allowed.", update_allowed=True
        ),
        "resource": Prop(
            "map",
            "The members' definition: {type, properties}.",
            required=True,
            update_allowed=True,
        ),
        "rolling_updates": Prop(
            "map",
            "How a change of `resource` goes: {min_in_service (0), max_batch_size (1), "
            "pause_time (0 seconds)}; as in Heat, one member at a time when not given.",
            update_allowed=True,
        ),
    }
    attributes: Mapping[str, str] = {
        "current_size": "How many members there are.",
        "refs": "Each member's reference, oldest first.",
        "refs_map": "Member index -> reference.",
        "outputs": "[outputs, name]: member index -> that attribute of each member.",
        "outputs_list": "[outputs_list, name]: that attribute of each member, as a list.",
    }

    def reference(self, res: StackResource) -> Any:
        return res.physical_resource_id or None

    def validate(self, props: Mapping[str, Any], known: Lookups) -> None:
        _sizes(props)
        validate_member(props.get("resource"), "", known)
        if props.get("rolling_updates") is not None:
            rolling_updates(props)

    def in_place(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
        return updatable(self.properties, old, new)

    async def create(self, step: Step, res: StackResource) -> Progress:
        p = res.properties
        try:
            _sizes(p)  # known only now if they came from other resources
        except InvalidRequest as e:
            return Progress.failure(str(e))
        res.physical_resource_id = res.id
        size = p.get("desired_capacity")
        size = clamp(res, int(p["min_size"] if size is None else size))
        res.data = {**(res.data or {}), "members": [str(i) for i in range(size)], "next": size}
        return await self._ended(step, res, await self._converge(step, res, fresh=True))

    async def update(self, step: Step, res: StackResource, new: dict[str, Any]) -> Progress:
        try:
            _sizes(new)  # known only now if they came from other resources
        except InvalidRequest as e:
            return Progress.failure(str(e))
        old = res.properties
        size = capacity(res)
        if new.get("desired_capacity") is not None and new.get("desired_capacity") != old.get(
            "desired_capacity"
        ):
            size = int(new["desired_capacity"])
        res.properties = new
        await resize(step, res, clamp(res, size))
        progress = await self._converge(step, res, fresh=True)  # rolls if a member is behind
        return await self._ended(step, res, progress)

    def _batching(self, res: StackResource) -> Batching | None:
        return batching(rolling_updates(res.properties))

    async def _converge(self, step: Step, res: StackResource, *, fresh: bool) -> Progress:
        d = res.properties["resource"]

        def define(i: str) -> Wanted:
            return Wanted(i, str(d.get("type")), d.get("properties") or {})

        progress = await self._members(step, res, define, fresh=fresh)
        if progress.done:
            members = [m for m in await members_of(step, res) if m.desired == Desired.PRESENT]
            res.attributes = recorded(res, members)
        return progress


def rolling_updates(props: Mapping[str, Any]) -> dict[str, Any]:
    """The `rolling_updates` property checked, with Heat's defaults."""
    return check_section("rolling_updates", ROLLING_FIELDS, props.get("rolling_updates") or {})


def _sizes(props: Mapping[str, Any]) -> None:
    low, high, want = (
        props.get("min_size"),
        props.get("max_size"),
        props.get("desired_capacity"),
    )
    if low is not None and not 0 <= low <= MAX_SIZE:
        raise InvalidRequest(f"min_size must be between 0 and {MAX_SIZE}.")
    if high is not None and not 0 <= high <= MAX_SIZE:
        raise InvalidRequest(f"max_size must be between 0 and {MAX_SIZE}.")
    if low is not None and high is not None and low > high:
        raise InvalidRequest("min_size can not be greater than max_size")
    if want is not None and low is not None and high is not None and not low <= want <= high:
        raise InvalidRequest("desired_capacity must be between min_size and max_size")
    check_cooldown("cooldown", props.get("cooldown"))


MAX_COOLDOWN = 10**9  # seconds (31 years): any more overflows a date


def check_cooldown(name: str, value: Any) -> None:
    """A group's or policy's cooldown: 0 to MAX_COOLDOWN seconds (when known now)."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return  # its type is checked with the other properties
    if not 0 <= value <= MAX_COOLDOWN:
        raise InvalidRequest(f"{name} must be between 0 and {MAX_COOLDOWN} seconds.")


def bounds(group: StackResource) -> tuple[int, int, int]:
    """A group's (min size, max size, cooldown), whichever of the two types it is."""
    p = group.properties
    if group.type == AWS_GROUP:
        return int(p["MinSize"]), int(p["MaxSize"]), int(p.get("Cooldown") or 0)
    return int(p["min_size"]), int(p["max_size"]), int(p.get("cooldown") or 0)


def clamp(group: StackResource, size: int) -> int:
    """`size` within the group's (current properties') min and max size."""
    low, high, _ = bounds(group)
    return max(low, min(high, size))


def capacity(group: StackResource) -> int:
    """The group's size: its members, but never those a rolling update's batch added for
    min_in_service for a while (its target, while its plan is recorded)."""
    target = rolling.target_of(group)
    return len((group.data or {}).get("members") or []) if target is None else target


async def resize(step: Step, group: StackResource, size: int) -> None:
    """Choose the members for `size`: new indexes to grow, the costliest to shrink."""
    data = dict(group.data or {})
    members: list[str] = list(data.get("members") or [])
    nxt = int(data.get("next", len(members)))
    if size > len(members):
        add = size - len(members)
        members += [str(i) for i in range(nxt, nxt + add)]
        nxt += add
    elif size < len(members):
        order = await removal_order(step, group, members)
        going = set(order[: len(members) - size])
        members = [m for m in members if m not in going]
    data.update(members=members, next=nxt)
    cooldown.clear(data)  # a scaling's mark is set again by the scaling (scaling.py)
    data.pop(rolling.KEY, None)  # a new size: a rolling update under way is planned again
    group.data = data


async def removal_order(step: Step, group: StackResource, indexes: list[str]) -> list[str]:
    """`indexes`, the first to remove first: not created yet, then the highest tier, then
    the highest price per hour (member_cost.py: a nested stack's or group's servers count
    for the member), then the newest (highest index)."""
    rows = {
        index_of(group, m): m for m in await members_of(step, group) if m.desired == Desired.PRESENT
    }
    costs = await member_costs(step.session, [m.id for m in rows.values()])

    def key(idx: str) -> tuple[int, int, int]:
        row = rows.get(idx)
        tier, price = (UNPLACED_TIER, 0) if row is None else costs.get(row.id, (0, 0))
        number = int(idx) if idx.isdigit() else -1
        return (-tier, -price, -number)

    return sorted(indexes, key=key)
