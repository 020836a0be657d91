"""AWS::AutoScaling::LaunchConfiguration and AWS::AutoScaling::AutoScalingGroup, as Heat
implements them, on the OS::Heat::AutoScalingGroup machinery (autoscaling.py).

A launch configuration is a record of an instance definition; its reference (Ref) is a
physical name, `<stack>-<resource>-<short id>`, and none of its properties can change in
place (a change makes a new one, with a new name). The group's LaunchConfigurationName is
that reference: each member is an AWS::EC2::Instance with the configuration's properties
and the group's Tags (plus Heat's `metering.` tags), placed by the scheduler like any canopy
server; scaling in removes the most expensive tier first, then the newest. As in Heat, the
group's Cooldown also starts when its create completes.

What canopy refuses, with the reason: `InstanceId` (a group or configuration copied from an
existing server), `LoadBalancerNames` (canopy has no load balancers), more than one
`VPCZoneIdentifier` (Heat refuses it too), and the properties Heat itself does not implement
(`HealthCheckGracePeriod`, `HealthCheckType`, `KernelId`, `RamDiskId`). `AvailabilityZones`
is required and ignored, as in Heat: the scheduler places each member.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from canopy.domain.errors import InvalidRequest
from canopy.orchestration.resources.autoscaling import (
    AWS_GROUP,
    MAX_SIZE,
    GroupSteps,
    capacity,
    check_cooldown,
    clamp,
    resize,
)
from canopy.orchestration.resources.base import Lookups, Progress, Prop, Step, updatable
from canopy.orchestration.resources.ec2_instance import Ec2Instance, pairs
from canopy.orchestration.resources.group_attrs import recorded
from canopy.orchestration.resources.members import Wanted, members_of
from canopy.orchestration.resources.update_policy import Batching, policy_of, rolling_of
from canopy.orchestration.states import Desired
from canopy.store.models import StackResource

LAUNCH_CONFIG = "AWS::AutoScaling::LaunchConfiguration"
_INSTANCE = Ec2Instance()
# What a configuration passes on to each member (the other properties are refused).
_PASSED = (
    "ImageId",
    "InstanceType",
    "KeyName",
    "UserData",
    "SecurityGroups",
    "BlockDeviceMappings",
    "NovaSchedulerHints",
)
_NOT_IMPLEMENTED = "Not implemented (by Heat either): refused if set."


def not_implemented(props: Mapping[str, Any], names: tuple[str, ...]) -> None:
    for key in names:
        if props.get(key) is not None:
            raise InvalidRequest(f"Property {key} not implemented yet")


def no_instance_id(props: Mapping[str, Any]) -> None:
    if props.get("InstanceId") is not None:
        raise InvalidRequest(
            "InstanceId is not supported by canopy: describe the instances with a "
            "LaunchConfiguration (LaunchConfigurationName)."
        )


class LaunchConfiguration:
    name = LAUNCH_CONFIG
    description = "The instance definition of an AWS::AutoScaling::AutoScalingGroup."
    open_properties = False
    properties: Mapping[str, Prop] = {
        "ImageId": Prop("string", "Image name or id.", required=True),
        "InstanceType": Prop("string", "Flavor name or id.", required=True),
        "KeyName": Prop("string", "Name of a keypair of the stack's user."),
        "UserData": Prop("string", "User data, passed to each instance as it is."),
        "SecurityGroups": Prop("list", "Accepted and recorded: canopy has no Neutron."),
        "BlockDeviceMappings": Prop(
            "list", "Accepted and recorded (each needs Ebs.SnapshotId): canopy has no Cinder."
        ),
        "NovaSchedulerHints": Prop("list", "Scheduler hints ({Key, Value}); group places."),
        "InstanceId": Prop("string", "Not supported by canopy: refused if set."),
        "KernelId": Prop("string", _NOT_IMPLEMENTED),
        "RamDiskId": Prop("string", _NOT_IMPLEMENTED),
    }
    attributes: Mapping[str, str] = {}

    def reference(self, res: StackResource) -> Any:
        return res.physical_resource_id or res.name

    def validate(self, props: Mapping[str, Any], known: Lookups) -> None:
        no_instance_id(props)
        not_implemented(props, ("KernelId", "RamDiskId"))
        for mapping in props.get("BlockDeviceMappings") or []:
            ebs = mapping.get("Ebs") if isinstance(mapping, Mapping) else None
            if not isinstance(ebs, Mapping):
                raise InvalidRequest(
                    "Ebs is missing, this is required when specifying BlockDeviceMappings."
                )
            if not ebs.get("SnapshotId"):
                raise InvalidRequest(
                    "SnapshotId is missing, this is required when specifying BlockDeviceMappings."
                )
        # The image, flavor, keypair, user data and hints, as an instance checks them.
        _INSTANCE.validate({k: props.get(k) for k in _PASSED}, known)

    def in_place(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
        return updatable(self.properties, old, new)

    async def create(self, step: Step, res: StackResource) -> Progress:
        res.physical_resource_id = f"{step.stack.name}-{res.name}-{res.id.replace('-', '')[:12]}"
        return Progress.complete()

    async def update(self, step: Step, res: StackResource, new: dict[str, Any]) -> Progress:
        res.properties = new  # never called: nothing is updatable in place
        return Progress.complete()

    async def delete(self, step: Step, res: StackResource) -> Progress:
        return Progress.complete()

    async def check(self, step: Step, res: StackResource) -> Progress:
        return Progress.complete()


class AwsAutoScalingGroup(GroupSteps):
    name = AWS_GROUP
    description = (
        "A CloudFormation group of instances from a LaunchConfiguration; scaling in "
        "removes members from the most expensive tier first."
    )
    open_properties = False
    properties: Mapping[str, Prop] = {
        "AvailabilityZones": Prop(
            "list",
            "Required and ignored, as in Heat: the scheduler places each member.",
            required=True,
        ),
        "LaunchConfigurationName": Prop(
            "string",
            "The reference (Ref) of an AWS::AutoScaling::LaunchConfiguration of this stack.",
            required=True,
            update_allowed=True,
        ),
        "MinSize": Prop("integer", "Fewest instances.", required=True, update_allowed=True),
        "MaxSize": Prop("integer", "Most instances.", required=True, update_allowed=True),
        "DesiredCapacity": Prop(
            "integer", "Instances wanted (default MinSize).", update_allowed=True
        ),
        "Cooldown": Prop(
            "integer", "Seconds after a scaling before another is allowed.", update_allowed=True
        ),
        "Tags": Prop("list", "Tags ({Key, Value}) set on every instance."),
        "VPCZoneIdentifier": Prop("list", "At most one subnet: recorded on each instance."),
        "LoadBalancerNames": Prop("list", "Refused if not empty: canopy has no load balancers."),
        "InstanceId": Prop("string", "Not supported by canopy: refused if set."),
        "HealthCheckGracePeriod": Prop("integer", _NOT_IMPLEMENTED),
        "HealthCheckType": Prop("string", _NOT_IMPLEMENTED, allowed=("EC2", "ELB")),
    }
    attributes: Mapping[str, str] = {
        "InstanceList": "A comma-delimited list of the instances' IP addresses.",
    }

    def reference(self, res: StackResource) -> Any:
        return res.physical_resource_id or res.name

    def validate(self, props: Mapping[str, Any], known: Lookups) -> None:
        _sizes(props)
        no_instance_id(props)
        not_implemented(props, ("HealthCheckGracePeriod", "HealthCheckType"))
        if props.get("LoadBalancerNames"):
            raise InvalidRequest("LoadBalancerNames: canopy has no load balancers.")
        zones = props.get("VPCZoneIdentifier")
        if zones and len(zones) != 1:
            raise InvalidRequest("Anything other than one VPCZoneIdentifier is not supported.")
        pairs("Tags", props.get("Tags"))
        ref = props.get("LaunchConfigurationName")
        if ref is not None:
            # Known before any resource exists: a literal name, not a Ref. Heat refuses it
            # (the group would not wait for the configuration).
            raise InvalidRequest(
                f"LaunchConfigurationName ({ref}) reference can not be found: refer to the "
                "launch configuration with Ref (or get_resource), not by its name."
            )

    def in_place(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
        return updatable(self.properties, old, new)

    async def create(self, step: Step, res: StackResource) -> Progress:
        p = res.properties
        try:
            _sizes(p)  # known only now if they came from other resources
        except InvalidRequest as e:
            return Progress.failure(str(e))
        res.physical_resource_id = res.id
        size = clamp(res, int(p.get("DesiredCapacity") or p["MinSize"]))
        res.data = {**(res.data or {}), "members": [str(i) for i in range(size)], "next": size}
        return await self._ended(step, res, await self._converge(step, res, fresh=True))

    async def update(self, step: Step, res: StackResource, new: dict[str, Any]) -> Progress:
        try:
            _sizes(new)
        except InvalidRequest as e:
            return Progress.failure(str(e))
        res.properties = new
        # Heat: DesiredCapacity if set, else the current size, within the new bounds.
        size = int(new.get("DesiredCapacity") or capacity(res))
        await resize(step, res, clamp(res, size))
        progress = await self._converge(step, res, fresh=True)  # rolls if a member is behind
        return await self._ended(step, res, progress)

    def _batching(self, res: StackResource) -> Batching | None:
        return rolling_of(self.name, policy_of(res))

    async def _converge(self, step: Step, res: StackResource, *, fresh: bool) -> Progress:
        p = res.properties
        ref = p.get("LaunchConfigurationName")
        config = await _launch_config(step, ref)
        if config is None:
            return Progress.failure(f"LaunchConfigurationName ({ref}) reference can not be found.")
        member = _member_properties(res, config)

        def define(i: str) -> Wanted:
            return Wanted(i, _INSTANCE.name, member)

        progress = await self._members(step, res, define, fresh=fresh)
        if progress.done:
            members = [m for m in await members_of(step, res) if m.desired == Desired.PRESENT]
            attrs = recorded(res, members)
            ips = [str((m.attributes or {}).get("PrivateIp") or "") for m in members]
            attrs["InstanceList"] = ",".join(ip for ip in ips if ip)
            res.attributes = attrs
        return progress


def _sizes(props: Mapping[str, Any]) -> None:
    """Heat's checks of the sizes (those known now)."""
    low, high, want = props.get("MinSize"), props.get("MaxSize"), props.get("DesiredCapacity")
    if low is not None and high is not None and high < low:
        raise InvalidRequest("MinSize can not be greater than MaxSize")
    if low is not None and low < 0:
        raise InvalidRequest("The size of AutoScalingGroup can not be less than zero")
    if high is not None and high > MAX_SIZE:
        raise InvalidRequest(f"MaxSize must be at most {MAX_SIZE}.")
    if want is not None and low is not None and high is not None and not low <= want <= high:
        raise InvalidRequest("DesiredCapacity must be between MinSize and MaxSize")
    check_cooldown("Cooldown", props.get("Cooldown"))


async def _launch_config(step: Step, ref: Any) -> StackResource | None:
    if not isinstance(ref, str) or not ref:
        return None
    q = (
        select(StackResource)
        .where(
            StackResource.stack_id == step.stack.id,
            StackResource.type == LAUNCH_CONFIG,
            StackResource.physical_resource_id == ref,
        )
        .order_by(StackResource.created_at.desc())
        .limit(1)
    )
    return (await step.session.execute(q)).scalars().first()


def _member_properties(group: StackResource, config: StackResource) -> dict[str, Any]:
    """An instance's properties: the configuration's, the group's tags and subnet."""
    out = {k: v for k in _PASSED if (v := (config.properties or {}).get(k)) is not None}
    p = group.properties
    ref = group.physical_resource_id
    tags: list[dict[str, Any]] = list(p.get("Tags") or [])
    if not any(str(t.get("Key", "")).startswith("metering.") for t in tags):
        tags.append({"Key": "metering.groupname", "Value": ref})
    tags.append({"Key": "metering.AutoScalingGroupName", "Value": ref})
    out["Tags"] = tags
    zones = p.get("VPCZoneIdentifier")
    if zones:
        out["SubnetId"] = zones[0]
    return out
