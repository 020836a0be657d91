"""AWS::AutoScaling::{LaunchConfiguration, AutoScalingGroup, ScalingPolicy} in CloudFormation
templates: Heat's properties and checks, members that are canopy servers placed by the
scheduler, scaling by signal with cooldowns (the public members go first), MinSize/MaxSize
updates, and a delete that leaves nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from canopy.domain.errors import InvalidRequest
from canopy.orchestration.outputs import bound_of, outputs
from canopy.orchestration.resources.base import Lookups
from canopy.orchestration.service import StackService
from canopy.orchestration.template import TemplateError
from canopy.orchestration.validation import check_resources
from tests.controllers.harness import Plane, make_plane

from .helpers import CLOUDS, create, events, live_servers, resources, settle, signals, stack
from .template.helpers import bind
from .test_autoscaling import members, signal_and_settle
from .test_groups import update

KNOWN = Lookups(
    flavors=frozenset({"m1.small"}),
    images=frozenset({"cirros"}),
    keypairs=frozenset({"mykey"}),
    zones=frozenset({"private", "public"}),
)


def config(**extra: Any) -> dict[str, Any]:
    return {
        "Type": "AWS::AutoScaling::LaunchConfiguration",
        "Properties": {"ImageId": "cirros", "InstanceType": "m1.small", **extra},
    }


def group(**extra: Any) -> dict[str, Any]:
    return {
        "Type": "AWS::AutoScaling::AutoScalingGroup",
        "Properties": {
            "AvailabilityZones": {"Fn::GetAZs": ""},
            "LaunchConfigurationName": {"Ref": "LaunchConfig"},
            "MinSize": "1",  # CloudFormation templates give the sizes as strings
            "MaxSize": "20",
            **extra,
        },
    }


def policy(adjustment: int, kind: str = "ChangeInCapacity", **extra: Any) -> dict[str, Any]:
    return {
        "Type": "AWS::AutoScaling::ScalingPolicy",
        "Properties": {
            "AutoScalingGroupName": {"Ref": "Group"},
            "AdjustmentType": kind,
            "ScalingAdjustment": str(adjustment),
            **extra,
        },
    }


def cfn(resources: dict[str, Any], outputs: dict[str, Any] | None = None) -> dict[str, Any]:
    t: dict[str, Any] = {"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources}
    if outputs:
        t["Outputs"] = outputs
    return t


TEMPLATE = cfn(
    {
        "LaunchConfig": config(UserData="#!/bin/sh\necho hi\n"),
        "Group": group(DesiredCapacity="4", Cooldown="60", Tags=[{"Key": "team", "Value": "web"}]),
        "ScaleOut": policy(4),
        "ScaleIn": policy(-6, Cooldown="0"),
    },
    outputs={
        "Alarm": {"Value": {"Fn::GetAtt": ["ScaleOut", "AlarmUrl"]}},
        "AlarmRef": {"Value": {"Ref": "ScaleOut"}},
        "Instances": {"Value": {"Fn::GetAtt": ["Group", "InstanceList"]}},
    },
)


def check(template: dict[str, Any]) -> None:
    check_resources(bind(template), KNOWN)


def test_the_template_validates() -> None:
    check(TEMPLATE)


@pytest.mark.parametrize(
    ("name", "change", "message"),
    [
        ("Group", {"Colour": "red"}, "Unknown Property Colour"),
        ("Group", {"MinSize": "5", "MaxSize": "2"}, "MinSize can not be greater than MaxSize"),
        ("Group", {"MinSize": "-1"}, "can not be less than zero"),
        ("Group", {"MinSize": "one"}, "is not a valid integer"),
        ("Group", {"DesiredCapacity": "30"}, "DesiredCapacity must be between"),
        ("Group", {"HealthCheckType": "EC2"}, "Property HealthCheckType not implemented yet"),
        ("Group", {"HealthCheckGracePeriod": 5}, "HealthCheckGracePeriod not implemented"),
        ("Group", {"LoadBalancerNames": ["lb"]}, "canopy has no load balancers"),
        ("Group", {"VPCZoneIdentifier": ["a", "b"]}, "Anything other than one VPCZoneIdentifier"),
        ("Group", {"InstanceId": "abc"}, "InstanceId is not supported by canopy"),
        ("Group", {"LaunchConfigurationName": "LaunchConfig"}, "reference can not be found"),
        ("Group", {"AvailabilityZones": None}, "Property AvailabilityZones not assigned"),
        ("Group", {"Tags": [{"Key": "a"}]}, "each item is a map of Key and Value"),
        ("LaunchConfig", {"ImageId": "nope"}, "No Image matching nope"),
        ("LaunchConfig", {"InstanceType": "huge"}, "No Flavor matching huge"),
        ("LaunchConfig", {"KeyName": "other"}, "The Key (other) could not be found"),
        ("LaunchConfig", {"KernelId": "k"}, "Property KernelId not implemented yet"),
        ("LaunchConfig", {"InstanceId": "abc"}, "InstanceId is not supported by canopy"),
        ("LaunchConfig", {"BlockDeviceMappings": [{"DeviceName": "vdb"}]}, "Ebs is missing"),
        ("LaunchConfig", {"Colour": 1}, "Unknown Property Colour"),
        ("ScaleOut", {"AdjustmentType": "Double"}, "is not one of the allowed values"),
        ("ScaleOut", {"MinAdjustmentStep": 2}, "should only be specified for AdjustmentType"),
        ("ScaleOut", {"ScalingAdjustment": "lots"}, "is not a valid integer"),
        ("ScaleOut", {"ScalingAdjustment": "1" + "0" * 400}, "ScalingAdjustment must be"),
        ("ScaleOut", {"AutoScalingGroupName": None}, "AutoScalingGroupName not assigned"),
        ("Group", {"Cooldown": "1000000000000000"}, "Cooldown must be between 0 and"),
        ("Group", {"Cooldown": "-1"}, "Cooldown must be between 0 and"),
        ("ScaleOut", {"Cooldown": 10**15}, "Cooldown must be between 0 and"),
    ],
)
def test_unknown_unsupported_and_bad_properties_are_refused_with_the_reason(
    name: str, change: dict[str, Any], message: str
) -> None:
    t = cfn({k: dict(v) for k, v in TEMPLATE["Resources"].items()})
    props = {**t["Resources"][name]["Properties"], **change}
    t["Resources"][name]["Properties"] = {k: v for k, v in props.items() if v is not None}
    with pytest.raises((InvalidRequest, TemplateError)) as e:
        check(t)
    assert message in str(e.value)
    assert f"resources.{name}" in str(e.value)


def test_percent_change_takes_a_min_adjustment_step() -> None:
    t = cfn(
        {
            "LaunchConfig": config(),
            "Group": group(),
            "P": policy(10, "PercentChangeInCapacity", MinAdjustmentStep="2"),
        }
    )
    check(t)


async def _clouds(p: Plane, sid: str) -> dict[str, str]:
    rows = members(await resources(p, sid))
    return {n: m.attributes["AvailabilityZone"] for n, m in rows.items()}


async def _outputs(p: Plane, sid: str) -> dict[str, Any]:
    done = await stack(p, sid)
    rows = list((await resources(p, sid)).values())
    return {o["output_key"]: o["output_value"] for o in outputs(bound_of(done, "RegionOne"), rows)}


async def test_create_scale_out_and_in_by_signal_with_cooldowns_then_delete_leaves_nothing(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "cfn", TEMPLATE)
        done = await settle(p, sid)
        assert (done.action, done.status) == ("CREATE", "COMPLETE"), done.status_reason
        rows = await resources(p, sid)
        assert {m.type for m in members(rows).values()} == {"AWS::EC2::Instance"}
        assert sorted((await _clouds(p, sid)).values()) == ["private"] * 4
        first = members(rows)["Group.0"].properties
        assert first["ImageId"] == "cirros" and first["UserData"] == "#!/bin/sh\necho hi\n"
        group_ref = rows["Group"].physical_resource_id
        assert {"Key": "team", "Value": "web"} in first["Tags"]
        assert {"Key": "metering.AutoScalingGroupName", "Value": group_ref} in first["Tags"]
        servers = await live_servers(p)
        assert len(servers) == 4
        assert all(s.metadata_["team"] == "web" for s in servers)
        outs = await _outputs(p, sid)
        # A policy's Ref is its signed AlarmUrl, as in Heat.
        assert outs["AlarmRef"] == outs["Alarm"] and "signal_token=" in outs["Alarm"]
        assert len(outs["Instances"].split(",")) == 4

        # The group's Cooldown also runs from the end of its create (Heat's rule).
        done = await signal_and_settle(p, sid, "ScaleOut")
        assert "group is in cooldown" in (await signals(p, sid))[-1].outcome
        assert len(await _clouds(p, sid)) == 4

        # Out by 4: private takes 2 more (its 80% threshold), 2 burst to public.
        p.clock.advance(61)
        done = await signal_and_settle(p, sid, "ScaleOut")
        assert (done.action, done.status) == ("UPDATE", "COMPLETE"), done.status_reason
        placed = await _clouds(p, sid)
        assert sorted(placed.values()) == ["private"] * 6 + ["public"] * 2

        # Inside the cooldown: recorded and ignored.
        await signal_and_settle(p, sid, "ScaleOut")
        assert "in cooldown" in (await signals(p, sid))[-1].outcome
        assert len(await _clouds(p, sid)) == 8

        # In by 6, to 2: the public members go first.
        p.clock.advance(61)
        done = await signal_and_settle(p, sid, "ScaleIn")
        assert (done.action, done.status) == ("UPDATE", "COMPLETE"), done.status_reason
        after = await _clouds(p, sid)
        assert set(after.values()) == {"private"} and len(after) == 2
        assert set(after) <= {n for n, c in placed.items() if c == "private"}
        assert len(await live_servers(p)) == 2
        seen = [(e.resource_name, e.action, e.status) for e in await events(p, sid)]
        assert ("ScaleIn", "SIGNAL", "COMPLETE") in seen

        async with p.db.session() as s:
            svc = StackService(p.settings, p.clock)
            await svc.delete(s, await svc.find(s, p.ctx.project_id, sid, lock=True))
        done = await settle(p, sid)
        assert (done.action, done.status) == ("DELETE", "COMPLETE"), done.status_reason
        assert await resources(p, sid) == {}
        assert await live_servers(p) == []
    finally:
        await p.close()


def _sizes(min_size: str, max_size: str) -> dict[str, Any]:
    return cfn(
        {
            "LaunchConfig": config(),
            "Group": group(MinSize=min_size, MaxSize=max_size),
        }
    )


async def test_updates_of_min_and_max_size_resize_the_group(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "sizes", _sizes("2", "10"))
        assert (await settle(p, sid)).status == "COMPLETE"
        assert len(members(await resources(p, sid))) == 2

        await update(p, sid, _sizes("7", "10"))  # MinSize above the size: it grows
        done = await settle(p, sid)
        assert (done.action, done.status) == ("UPDATE", "COMPLETE"), done.status_reason
        placed = await _clouds(p, sid)
        assert sorted(placed.values()) == ["private"] * 6 + ["public"]

        await update(p, sid, _sizes("1", "3"))  # MaxSize below it: it shrinks, public first
        done = await settle(p, sid)
        assert (done.action, done.status) == ("UPDATE", "COMPLETE"), done.status_reason
        kept = await _clouds(p, sid)
        assert set(kept.values()) == {"private"} and len(kept) == 3
        assert len(await live_servers(p)) == 3

    finally:
        await p.close()


async def test_a_configuration_change_replaces_every_member(db_url: str, tmp_path: Path) -> None:
    def template(data: str) -> dict[str, Any]:
        return cfn({"LaunchConfig": config(UserData=data), "Group": group(MinSize="2")})

    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "lc", template("one"))
        assert (await settle(p, sid)).status == "COMPLETE"
        rows = await resources(p, sid)
        old_ref = rows["LaunchConfig"].physical_resource_id
        old_servers = {m.server_id for m in members(rows).values()}
        await update(p, sid, template("two"))
        done = await settle(p, sid)
        assert (done.action, done.status) == ("UPDATE", "COMPLETE"), done.status_reason
        rows = await resources(p, sid)
        assert rows["LaunchConfig"].physical_resource_id != old_ref
        now = members(rows)
        assert {m.properties["UserData"] for m in now.values()} == {"two"}
        assert not {m.server_id for m in now.values()} & old_servers
        assert len(await live_servers(p)) == 2
        assert sum(1 for r in rows.values() if r.type.endswith("LaunchConfiguration")) == 1
    finally:
        await p.close()
