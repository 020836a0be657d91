"""Heat through the real `openstack stack ...` and `openstack orchestration ...`
(python-heatclient) against a real `canopy up`: a stack with a server is created and
waited for, listed, shown, its resources, events and outputs read, updated with
`--existing`, and deleted, leaving no server behind."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from .conftest import CanopyServer

TEMPLATE = """
heat_template_version: 2018-08-31
description: a server and a password
parameters:
  word:
    type: string
    default: hello
resources:
  password:
    type: OS::Heat::RandomString
    properties:
      length: 16
  vm:
    type: OS::Nova::Server
    properties:
      flavor: m1.small
      image: cirros
      metadata:
        word: {get_param: word}
        secret: {get_resource: password}
outputs:
  said:
    description: the word, through the server
    value: {get_attr: [vm, show, metadata, word]}
  cloud:
    value: {get_attr: [vm, canopy, cloud]}
"""


def _waited(server: CanopyServer, *args: str) -> Any:
    """`openstack stack ... --wait -f json`: the client prints the events it waited
    through before the JSON."""
    done = server.run_openstack(*args, "-f", "json")
    assert done.returncode == 0, f"{done.stderr}\n{server.log()[-3000:]}"
    return json.loads(done.stdout[done.stdout.index("{\n") :])


def create_web(server: CanopyServer, path: Path) -> Any:
    """`openstack stack create --wait` of TEMPLATE (at `path`) as stack `web`, word=hi,
    polling every second; the stack shown."""
    return _waited(
        server, "stack", "create", "--poll", "1", "-t", str(path), "--parameter", "word=hi",
        "--wait", "web",
    )  # fmt: skip


def test_stack_lifecycle_with_the_real_client(canopy_server: CanopyServer, tmp_path: Path) -> None:
    path = tmp_path / "stack.yaml"
    path.write_text(TEMPLATE)
    osc = canopy_server.openstack

    valid = osc("orchestration", "template", "validate", "-t", str(path))
    assert valid["Description"] == "a server and a password"
    assert "word" in valid["Parameters"]
    types = {t["Resource Type"] for t in osc("orchestration", "resource", "type", "list")}
    assert {"OS::Nova::Server", "OS::Heat::RandomString"} <= types

    created = create_web(canopy_server, path)
    assert created["stack_status"] == "CREATE_COMPLETE", created
    listed = osc("stack", "list")
    assert [(s["Stack Name"], s["Stack Status"]) for s in listed] == [("web", "CREATE_COMPLETE")]
    shown = osc("stack", "show", "web")
    assert shown["id"] == created["id"]
    # Canopy's extension, shown by the real client as a field of its own.
    [where] = shown["canopy"]["placement"]
    assert shown["canopy"]["servers"] == 1 and where["servers"] == 1
    resources = {r["resource_name"]: r for r in osc("stack", "resource", "list", "web")}
    assert resources["vm"]["resource_status"] == "CREATE_COMPLETE"
    assert resources["vm"]["resource_type"] == "OS::Nova::Server"
    # `resource show` says where the server went and why (canopy's `canopy` attribute),
    # the same cloud as the stack's summary.
    vm = osc("stack", "resource", "show", "web", "vm")
    assert vm["physical_resource_id"] == resources["vm"]["physical_resource_id"], vm
    assert vm["resource_status"] == "CREATE_COMPLETE"
    placed = vm["attributes"]["canopy"]
    assert placed["cloud"] == where["cloud"] and placed["zone"] == where["zone"], placed
    assert placed["cloud"] in placed["reason"], placed
    events = osc("stack", "event", "list", "web")
    [vm_done] = [
        e
        for e in events
        if e["resource_name"] == "vm" and e["resource_status"] == "CREATE_COMPLETE"
    ]
    event = osc("stack", "event", "show", "web", "vm", vm_done["id"])
    assert (event["id"], event["resource_name"]) == (vm_done["id"], "vm"), event
    assert event["resource_status"] == "CREATE_COMPLETE"
    assert event["physical_resource_id"] == vm["physical_resource_id"]
    listed_outputs = osc("stack", "output", "list", "web")
    assert sorted(o["output_key"] for o in listed_outputs) == ["cloud", "said"], listed_outputs
    said = osc("stack", "output", "show", "web", "said")
    assert said["output_value"] == "hi"
    cloud = osc("stack", "output", "show", "web", "cloud")
    assert cloud["output_value"] in ("private", "public")
    assert where["cloud"] == cloud["output_value"]
    servers = osc("server", "list")
    assert [s["ID"] for s in servers] == [resources["vm"]["physical_resource_id"]]

    osc(
        "stack",
        "update",
        "--existing",
        "--parameter",
        "word=bye",
        "--wait",
        "web",
        json_output=False,
    )
    assert osc("stack", "show", "web")["stack_status"] == "UPDATE_COMPLETE"
    assert osc("stack", "output", "show", "web", "said")["output_value"] == "bye"

    osc("stack", "delete", "--yes", "--wait", "web", json_output=False)
    assert osc("stack", "list") == []
    assert osc("server", "list") == []
    rc, err = canopy_server.openstack_fail("stack", "show", "web")
    assert rc == 1 and "Stack not found: web" in err


def test_a_template_naming_an_unknown_type_is_refused(
    canopy_server: CanopyServer, tmp_path: Path
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        json.dumps(
            {
                "heat_template_version": "2018-08-31",
                "resources": {"net": {"type": "OS::Neutron::Net"}},
            }
        )
    )
    rc, err = canopy_server.openstack_fail("stack", "create", "-t", str(path), "bad")
    assert rc == 1 and "OS::Neutron::Net" in err and "OS::Nova::Server" in err
    assert canopy_server.openstack("stack", "list") == []


ACTIONS_TEMPLATE = """
heat_template_version: 2018-08-31
parameters:
  v:
    type: string
    default: one
  slow:
    type: number
    default: 0
resources:
  vm:
    type: OS::Nova::Server
    properties:
      flavor: m1.small
      image: cirros
  slowpoke:
    type: OS::Heat::TestResource
    properties:
      value: {get_param: v}
      action_wait_secs:
        update: {get_param: slow}
  config:
    type: AWS::AutoScaling::LaunchConfiguration
    properties:
      ImageId: cirros
      InstanceType: m1.small
  group:
    type: AWS::AutoScaling::AutoScalingGroup
    properties:
      AvailabilityZones: []
      LaunchConfigurationName: {get_resource: config}
      MinSize: "1"
      MaxSize: "3"
"""


def _acted(server: CanopyServer, *args: str) -> str:
    """`openstack stack <action> --wait ...`, which must succeed; what it printed."""
    done = server.run_openstack("stack", *args)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{server.log()[-3000:]}"
    return done.stdout


def test_suspend_resume_check_cancel_and_abandon_with_the_real_client(
    canopy_server: CanopyServer, tmp_path: Path
) -> None:
    path = tmp_path / "acts.yaml"
    path.write_text(ACTIONS_TEMPLATE)
    osc = canopy_server.openstack
    created = _waited(
        canopy_server, "stack", "create", "--poll", "1", "-t", str(path), "--wait", "acts"
    )
    assert created["stack_status"] == "CREATE_COMPLETE", created
    vm = {r["resource_name"]: r for r in osc("stack", "resource", "list", "acts")}["vm"]
    server_id = vm["physical_resource_id"]
    assert len(osc("server", "list")) == 2  # vm and the group's one member

    # Suspend stops the servers (the group's member too); resume starts them again.
    _acted(canopy_server, "suspend", "--wait", "acts")
    assert osc("stack", "show", "acts")["stack_status"] == "SUSPEND_COMPLETE"
    assert {s["Status"] for s in osc("server", "list")} == {"SHUTOFF"}
    resources = {r["resource_name"]: r for r in osc("stack", "resource", "list", "acts")}
    assert resources["vm"]["resource_status"] == "SUSPEND_COMPLETE"
    assert resources["group"]["resource_status"] == "SUSPEND_COMPLETE"
    _acted(canopy_server, "resume", "--wait", "acts")
    assert osc("stack", "show", "acts")["stack_status"] == "RESUME_COMPLETE"
    assert {s["Status"] for s in osc("server", "list")} == {"ACTIVE"}

    # Check confirms every resource.
    _acted(canopy_server, "check", "--wait", "acts")
    assert osc("stack", "show", "acts")["stack_status"] == "CHECK_COMPLETE"
    checked = osc("stack", "resource", "list", "acts")
    assert {r["resource_status"] for r in checked} == {"CHECK_COMPLETE"}

    # An update held in progress (the test resource waits 10 minutes) is cancelled and
    # rolled back to the template and parameters before it.
    osc(
        "stack",
        "update",
        "--existing",
        "--parameter",
        "v=two",
        "--parameter",
        "slow=600",
        "acts",
    )
    assert osc("stack", "show", "acts")["stack_status"] == "UPDATE_IN_PROGRESS"
    _acted(canopy_server, "cancel", "--wait", "acts")
    shown = osc("stack", "show", "acts")
    assert shown["stack_status"] == "ROLLBACK_COMPLETE", shown
    assert {p: v for p, v in shown["parameters"].items() if p in ("v", "slow")} == {
        "v": "one",
        "slow": "0",
    }
    assert osc("stack", "output", "list", "acts") == []  # (the template has no outputs)

    # Without rollback: the update stops where it is, UPDATE_FAILED.
    osc("stack", "update", "--existing", "--parameter", "slow=600", "acts")
    osc("stack", "cancel", "--no-rollback", "acts")
    shown = osc("stack", "show", "acts")
    assert shown["stack_status"] == "UPDATE_FAILED", shown
    assert "cancelled" in shown["stack_status_reason"]
    rc, err = canopy_server.openstack_fail("stack", "cancel", "acts")
    assert rc == 1 and "not in cancelable state" in err

    # Abandon prints the stack's data and forgets it; its server stays.
    abandoned = osc("stack", "abandon", "acts")
    assert abandoned["name"] == "acts" and abandoned["id"] == created["id"]
    assert abandoned["resources"]["vm"]["resource_id"] == server_id
    assert abandoned["resources"]["vm"]["type"] == "OS::Nova::Server"
    assert osc("stack", "list") == []
    kept = [s["ID"] for s in osc("server", "list")]
    assert server_id in kept and len(kept) == 2
    osc("server", "delete", "--wait", *kept, json_output=False)
    assert osc("server", "list") == []


CFN_GROUP = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Resources": {
        "LaunchConfig": {
            "Type": "AWS::AutoScaling::LaunchConfiguration",
            "Properties": {"ImageId": "cirros", "InstanceType": "m1.small"},
        },
        "Group": {
            "Type": "AWS::AutoScaling::AutoScalingGroup",
            "Properties": {
                "AvailabilityZones": {"Fn::GetAZs": ""},
                "LaunchConfigurationName": {"Ref": "LaunchConfig"},
                "MinSize": "1",
                "MaxSize": "3",
            },
        },
        "ScaleUp": {
            "Type": "AWS::AutoScaling::ScalingPolicy",
            "Properties": {
                "AutoScalingGroupName": {"Ref": "Group"},
                "AdjustmentType": "ChangeInCapacity",
                "ScalingAdjustment": "2",
            },
        },
    },
    "Outputs": {"AlarmUrl": {"Value": {"Fn::GetAtt": ["ScaleUp", "AlarmUrl"]}}},
}


def test_a_cloudformation_group_scales_with_curl_on_its_alarm_url(
    canopy_server: CanopyServer, tmp_path: Path
) -> None:
    path = tmp_path / "asg.json"
    path.write_text(json.dumps(CFN_GROUP))
    osc = canopy_server.openstack
    assert "Parameters" in osc("orchestration", "template", "validate", "-t", str(path))
    created = _waited(
        canopy_server, "stack", "create", "--poll", "1", "-t", str(path), "--wait", "cfn"
    )
    assert created["stack_status"] == "CREATE_COMPLETE", created
    url = osc("stack", "output", "show", "cfn", "AlarmUrl")["output_value"]
    # A plain `curl -X POST` (no token header, no body), as an alarm sends it.
    done = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.stdout == "200", done
    deadline = time.monotonic() + 120
    status = ""
    while time.monotonic() < deadline:  # polling a real process
        status = osc("stack", "show", "cfn")["stack_status"]
        if status == "UPDATE_COMPLETE":
            break
        time.sleep(1)
    assert status == "UPDATE_COMPLETE", canopy_server.log()[-3000:]
    nested = osc("stack", "resource", "list", "--nested-depth", "1", "cfn")
    members = [r for r in nested if r["resource_type"] == "AWS::EC2::Instance"]
    assert len(members) == 3
    # The members' events come with the group's, nested by the server (root_stack links).
    events = osc("stack", "event", "list", "--nested-depth", "1", "cfn")
    assert {m["resource_name"] for m in members} <= {e["resource_name"] for e in events}
    assert len(osc("server", "list")) == 3
    osc("stack", "delete", "--yes", "--wait", "cfn", json_output=False)
    assert osc("stack", "list") == []
    assert osc("server", "list") == []
