"""AWS::AutoScaling::* over HTTP: `/validate` refuses an unknown or unsupported property
with a 400 in Heat's fault format, the types are listed, and a policy's AlarmUrl (its Ref)
scales the group with a plain `curl -X POST` (no token, no body)."""

from __future__ import annotations

import copy

import httpx

from tests.api.conftest import Api
from tests.orchestration.helpers import settle
from tests.orchestration.test_aws_autoscaling import TEMPLATE

from .test_signals import _stack, path_of
from .test_stacks import assert_heat_fault

TYPES = (
    "AWS::AutoScaling::AutoScalingGroup",
    "AWS::AutoScaling::LaunchConfiguration",
    "AWS::AutoScaling::ScalingPolicy",
)


async def test_validate_lists_and_refuses_with_heats_fault(api: Api) -> None:
    base = f"/orchestration/v1/{api.admin.project_id}"
    r = await api.client.post(base + "/validate", json={"template": TEMPLATE})
    assert r.status_code == 200, r.text
    listed = set((await api.client.get(base + "/resource_types")).json()["resource_types"])
    assert set(TYPES) <= listed
    shown = (await api.client.get(base + "/resource_types/" + TYPES[0])).json()
    assert shown["properties"]["MinSize"]["required"] is True
    assert "InstanceList" in shown["attributes"]

    bad = copy.deepcopy(TEMPLATE)
    bad["Resources"]["Group"]["Properties"]["Flavour"] = "x"
    message = assert_heat_fault(
        await api.client.post(base + "/validate", json={"template": bad}), 400
    )
    assert "Unknown Property Flavour" in message and "MinSize" in message
    bad = copy.deepcopy(TEMPLATE)
    bad["Resources"]["Group"]["Properties"]["LoadBalancerNames"] = ["elb"]
    r = await api.client.post(base + "/stacks", json={"stack_name": "lb", "template": bad})
    assert "no load balancers" in assert_heat_fault(r, 400)
    r = await api.client.get(base + "/stacks")
    assert r.json()["stacks"] == []  # nothing was created


async def test_the_alarm_url_scales_with_a_plain_post(api: Api) -> None:
    pid = api.admin.project_id
    sid, outs = await _stack(api, "cfnasg", TEMPLATE)
    assert outs["AlarmRef"] == outs["Alarm"]
    members = f"/orchestration/v1/{pid}/stacks/cfnasg/{sid}/resources?nested_depth=1"
    api.plane.clock.advance(61)  # past the group's Cooldown, which runs from its create
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api.app), base_url="http://canopy.test"
    ) as anonymous:
        forged = path_of(outs["Alarm"]).split("signal_token=")[0] + "signal_token=forged"
        assert_heat_fault(await anonymous.post(forged), 403)
        r = await anonymous.post(path_of(outs["Alarm"]))  # `curl -X POST <AlarmUrl>`
        assert r.status_code == 200, r.text
    await api.plane.worker.orchestration.run_once()
    done = await settle(api.plane, sid)
    assert (done.action, done.status) == ("UPDATE", "COMPLETE"), done.status_reason
    listed = (await api.client.get(members)).json()["resources"]
    grown = [m for m in listed if m.get("parent_resource") == "Group"]
    assert len(grown) == 8
    assert {m["resource_type"] for m in grown} == {"AWS::EC2::Instance"}
