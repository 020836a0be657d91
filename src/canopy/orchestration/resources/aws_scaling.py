"""AWS::AutoScaling::ScalingPolicy: OS::Heat::ScalingPolicy (scaling.py) in CloudFormation's
names, as Heat implements it.

Its reference (Ref) is its pre-signed `AlarmUrl` (a plain `curl -X POST` to it scales the
group), as Heat's is its signed URL; `AutoScalingGroupName` is the group's Ref. The adjustment
types are ChangeInCapacity, ExactCapacity and PercentChangeInCapacity, and
MinAdjustmentStep is only allowed with the last. Signals follow scaling.py's rules: ignored
while the stack is IN_PROGRESS or the group is in cooldown (a policy's own Cooldown, when
given, stands for the group's after the scaling it makes, as in Heat).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from canopy.domain.errors import InvalidRequest
from canopy.orchestration.resources.autoscaling import check_cooldown
from canopy.orchestration.resources.base import Lookups, Progress, Prop, Step, updatable
from canopy.orchestration.resources.scaling import MAX_ADJUSTMENT, Adjustment, ScalingPolicy
from canopy.orchestration.signal_tokens import arm, presigned
from canopy.store.models import StackResource

# CloudFormation's adjustment types -> scaling.new_capacity's (Heat's HOT names).
KINDS = {
    "ChangeInCapacity": "change_in_capacity",
    "ExactCapacity": "exact_capacity",
    "PercentChangeInCapacity": "percent_change_in_capacity",
}


class AwsScalingPolicy(ScalingPolicy):
    """The HOT policy's delete, check and signal, with CloudFormation's properties."""

    name = "AWS::AutoScaling::ScalingPolicy"
    description = "Changes an AWS::AutoScaling::AutoScalingGroup's size when its AlarmUrl is hit."
    open_properties = False
    properties: Mapping[str, Prop] = {
        "AutoScalingGroupName": Prop(
            "string", "The group's reference (Ref), in this stack.", required=True
        ),
        "ScalingAdjustment": Prop(
            "integer", "Size of adjustment.", required=True, update_allowed=True
        ),
        "AdjustmentType": Prop(
            "string",
            "Type of adjustment (absolute or percentage).",
            required=True,
            update_allowed=True,
            allowed=tuple(KINDS),
        ),
        "Cooldown": Prop("integer", "Cooldown period, in seconds.", update_allowed=True),
        "MinAdjustmentStep": Prop(
            "integer",
            "The least change, for PercentChangeInCapacity only.",
            update_allowed=True,
        ),
    }
    attributes: Mapping[str, str] = {
        "AlarmUrl": "A signed url to handle the alarm: POST to it (no token needed) to scale.",
    }

    def reference(self, res: StackResource) -> Any:
        return (res.attributes or {}).get("AlarmUrl") or res.name

    def validate(self, props: Mapping[str, Any], known: Lookups) -> None:
        adjustment = props.get("ScalingAdjustment")
        if adjustment is not None and abs(adjustment) > MAX_ADJUSTMENT:
            raise InvalidRequest(
                f"ScalingAdjustment must be between -{MAX_ADJUSTMENT} and {MAX_ADJUSTMENT}."
            )
        step = props.get("MinAdjustmentStep")
        if step is not None and step < 0:
            raise InvalidRequest("MinAdjustmentStep must be at least 0.")
        kind = props.get("AdjustmentType")
        if step is not None and kind is not None and kind != "PercentChangeInCapacity":
            raise InvalidRequest(
                "MinAdjustmentStep property should only be specified for AdjustmentType "
                "with value PercentChangeInCapacity."
            )
        check_cooldown("Cooldown", props.get("Cooldown"))

    def in_place(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
        return updatable(self.properties, old, new)

    async def create(self, step: Step, res: StackResource) -> Progress:
        try:
            self.validate(res.properties, Lookups())  # values from other resources, now known
        except InvalidRequest as e:
            return Progress.failure(str(e))
        token = arm(res)
        res.physical_resource_id = res.id
        base = step.servers.settings.public_url
        res.attributes = {"AlarmUrl": presigned(base, step.stack, res.name, token)}
        return Progress.complete()

    async def update(self, step: Step, res: StackResource, new: dict[str, Any]) -> Progress:
        try:
            self.validate(new, Lookups())
        except InvalidRequest as e:
            return Progress.failure(str(e))
        res.properties = new
        return Progress.complete()

    def adjustment(self, p: Mapping[str, Any]) -> Adjustment:
        return Adjustment(
            group_ref=p.get("AutoScalingGroupName"),
            amount=float(p["ScalingAdjustment"]),
            kind=KINDS[str(p["AdjustmentType"])],
            min_step=int(p.get("MinAdjustmentStep") or 0),
            cooldown=p.get("Cooldown"),
        )
