"""OS::Heat::ScalingPolicy: a signal that changes an AutoScalingGroup's capacity.

`alarm_url` is a pre-signed URL (a plain `curl -X POST` works), `signal_url` the same route
for a caller with a Keystone token. A signal, acted on by the engine:

- is ignored (and recorded as such) while the group is scaling (Heat's "due to scaling
  activity") or while the stack is IN_PROGRESS otherwise;
- otherwise computes the new capacity as Heat does (change_in_capacity, exact_capacity,
  percent_change_in_capacity with min_adjustment_step; clamped to min_size..max_size): the
  same size is "no change", then a group in cooldown ignores it (Heat's `adjust` order);
  else it starts the group's UPDATE: the stack shows UPDATE_IN_PROGRESS until the members
  are there (or gone), then UPDATE_COMPLETE.

The cooldown is the group's state, as in Heat: a scaling puts the group in cooldown for the
policy's own `cooldown` when it has one (0 included), else the group's; a later end already
set is kept. So a policy's cooldown holds back every policy of the group, and a policy with
`cooldown: 0` may scale again at once though the group's is longer. As in Heat, it runs
from the end of the resize (cooldown.py): a scaling that failed starts none.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from canopy.domain.errors import InvalidRequest
from canopy.orchestration.events import resource_event
from canopy.orchestration.resources import cooldown
from canopy.orchestration.resources.autoscaling import (
    GROUP_TYPES,
    bounds,
    capacity,
    check_cooldown,
    clamp,
    resize,
)
from canopy.orchestration.resources.base import Lookups, Progress, Prop, Step, updatable
from canopy.orchestration.resources.members import begin
from canopy.orchestration.resources.signalling import Handled
from canopy.orchestration.signal_tokens import arm, endpoint, presigned
from canopy.orchestration.states import Action, Desired, Status
from canopy.orchestration.tree_limit import (
    LIMIT_MESSAGE,
    MAX_TREE_RESOURCES,
    member_size,
    root_id,
    tree_total,
)
from canopy.store.models import StackResource

ADJUSTMENTS = ("change_in_capacity", "exact_capacity", "percent_change_in_capacity")


class ScalingPolicy:
    name = "OS::Heat::ScalingPolicy"
    description = "Changes an AutoScalingGroup's size when signalled (alarm_url)."
    open_properties = False
    properties: Mapping[str, Prop] = {
        "auto_scaling_group_id": Prop(
            "string", "The group (get_resource) in this stack.", required=True
        ),
        "adjustment_type": Prop(
            "string",
            "How scaling_adjustment is read.",
            required=True,
            update_allowed=True,
            allowed=ADJUSTMENTS,
        ),
        "scaling_adjustment": Prop(
            "number", "The size of the adjustment.", required=True, update_allowed=True
        ),
        "cooldown": Prop(
            "integer",
            "Seconds after a scaling before this policy acts again.",
            update_allowed=True,
        ),
        "min_adjustment_step": Prop(
            "integer", "For percent_change_in_capacity: the least change.", update_allowed=True
        ),
    }
    attributes: Mapping[str, str] = {
        "alarm_url": "A pre-signed URL: POST to it (no token needed) to scale.",
        "signal_url": "The signal route of this policy (needs a Keystone token).",
    }

    def reference(self, res: StackResource) -> Any:
        return res.physical_resource_id or None

    def validate(self, props: Mapping[str, Any], known: Lookups) -> None:
        step = props.get("min_adjustment_step")
        if step is not None and step < 0:
            raise InvalidRequest("min_adjustment_step must not be negative.")
        check_cooldown("cooldown", props.get("cooldown"))
        check_adjustment("scaling_adjustment", props.get("scaling_adjustment"))

    def in_place(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
        return updatable(self.properties, old, new)

    async def create(self, step: Step, res: StackResource) -> Progress:
        token = arm(res)
        base = step.servers.settings.public_url
        res.physical_resource_id = res.id
        res.attributes = {
            "alarm_url": presigned(base, step.stack, res.name, token),
            "signal_url": endpoint(base, step.stack, res.name),
        }
        return Progress.complete()

    async def update(self, step: Step, res: StackResource, new: dict[str, Any]) -> Progress:
        res.properties = new
        return Progress.complete()

    async def delete(self, step: Step, res: StackResource) -> Progress:
        return Progress.complete()

    async def check(self, step: Step, res: StackResource) -> Progress:
        return Progress.complete()

    def check_signal(self, data: Any) -> dict[str, Any]:
        return dict(data) if isinstance(data, Mapping) else {"body": data}

    async def signal(self, step: Step, res: StackResource, data: dict[str, Any]) -> Handled:
        return await scale(step, res, self.adjustment(res.properties))

    def adjustment(self, p: Mapping[str, Any]) -> Adjustment:
        """What the policy's properties ask of its group."""
        return Adjustment(
            group_ref=p.get("auto_scaling_group_id"),
            amount=float(p["scaling_adjustment"]),
            kind=str(p["adjustment_type"]),
            min_step=int(p.get("min_adjustment_step") or 0),
            cooldown=p.get("cooldown"),
        )


MAX_ADJUSTMENT = 1_000_000  # far past any group's max_size; bigger would overflow a float


def check_adjustment(name: str, value: Any) -> None:
    """A policy's adjustment is a finite number within +-MAX_ADJUSTMENT (YAML has .inf)."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return  # its type is checked with the other properties
    if not math.isfinite(value) or abs(value) > MAX_ADJUSTMENT:
        raise InvalidRequest(
            f"{name} must be a number between -{MAX_ADJUSTMENT} and {MAX_ADJUSTMENT}."
        )


@dataclass(frozen=True)
class Adjustment:
    """What a policy asks of its group (Heat's adjustment types, in HOT's names)."""

    group_ref: Any
    amount: float
    kind: str
    min_step: int
    cooldown: int | None  # the policy's own; None: the group's


async def scale(step: Step, res: StackResource, adj: Adjustment) -> Handled:
    """Act on a signal to the policy `res` (either type): Heat's checks, then the scaling."""
    now = step.clock.now()
    stack = step.stack
    group = await _group(step, adj.group_ref)
    if group is not None and cooldown.scaling(group):
        return Handled(f"ignored: {group.name} is scaling (due to scaling activity)")
    if stack.status == Status.IN_PROGRESS:
        return Handled(f"ignored: the stack is {stack.action}_IN_PROGRESS (scaling in progress)")
    if group is None:
        return Handled("ignored: the group was not found in this stack")
    current = capacity(group)
    size = clamp(group, new_capacity(current, adj.amount, adj.kind, adj.min_step))
    if size == current:  # before the cooldown, as Heat's `adjust` asks
        return Handled(f"no change: {group.name} stays at {current}")
    until = cooldown.cooldown_end(group)
    if until is not None and now < until:
        return Handled(f"ignored: the group is in cooldown until {until.isoformat()}")
    if size > current and await _past_limit(step, group, size - current):
        group.action, group.status = Action.UPDATE, Status.FAILED
        group.status_reason = f"RequestLimitExceeded: resources.{group.name}: {LIMIT_MESSAGE}"
        group.updated_at = now
        resource_event(step.session, step.stack, group, group.status_reason, now)
        return Handled(f"refused: scaling {group.name} to {size}: {LIMIT_MESSAGE}")
    await resize(step, group, size)
    cooldown.start(group, bounds(group)[2] if adj.cooldown is None else int(adj.cooldown))
    group.data = {**group.data, "retry_failed": True}  # as a stack update would
    begin(step, group, Action.UPDATE, now)
    group.status_reason = f"scaling {current} -> {size} (signal to {res.name})"
    return Handled(f"scaling {group.name} from {current} to {size}", started=True)


async def _past_limit(step: Step, group: StackResource, added: int) -> bool:
    """Whether `added` members more would take the root stack's whole tree past Heat's
    max_resources_per_stack (each new member the size of an existing one)."""
    s = step.session
    members = list((group.data or {}).get("members") or [])
    size = await member_size(s, group.stack_id, f"{group.name}.{members[0]}") if members else 1
    total = await tree_total(s, await root_id(s, step.stack))
    return total + added * size > MAX_TREE_RESOURCES


def new_capacity(current: int, adjustment: float, kind: str, min_step: int) -> int:
    """Heat's arithmetic (before the clamp to min_size..max_size)."""
    if kind == "change_in_capacity":
        return current + int(adjustment)
    if kind == "exact_capacity":
        return int(adjustment)
    delta = current * adjustment / 100.0
    if math.fabs(delta) < 1.0:
        change = int(math.ceil(delta) if delta > 0.0 else math.floor(delta))
    else:
        change = int(math.floor(delta) if delta > 0.0 else math.ceil(delta))
    if min_step and min_step > abs(change):
        # The sign of the asked-for change (Heat takes the rounded one's, so +5% of an
        # empty group would shrink it).
        change = min_step if adjustment > 0 else -min_step
    return current + change


async def _group(step: Step, ref: Any) -> StackResource | None:
    if not isinstance(ref, str) or not ref:
        return None
    return (
        await step.session.execute(
            select(StackResource).where(
                StackResource.stack_id == step.stack.id,
                StackResource.physical_resource_id == ref,
                StackResource.type.in_(GROUP_TYPES),
                StackResource.desired == Desired.PRESENT,
                StackResource.group_id.is_(None),
            )
        )
    ).scalar_one_or_none()
