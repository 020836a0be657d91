"""The server life cycle through the real `openstack` CLI against a real `canopy up`."""

from __future__ import annotations

import time
from typing import Any

from .conftest import CanopyServer

WAIT = 60.0  # seconds for a real process to reach a state


def _until_status(canopy: CanopyServer, name: str, status: str) -> dict[str, Any]:
    """Poll `server show` (a real process: there is no fake clock to step)."""
    deadline = time.monotonic() + WAIT
    shown: dict[str, Any] = {}
    while time.monotonic() < deadline:
        shown = canopy.openstack("server", "show", name)
        if shown["status"] == status and not shown.get("OS-EXT-STS:task_state"):
            return shown
        time.sleep(0.2)
    raise AssertionError(f"{name} never reached {status}: {shown.get('status')}\n{canopy.log()}")


def test_flavors_and_zones(canopy_server: CanopyServer) -> None:
    osc = canopy_server.openstack
    flavors = {f["Name"]: f for f in osc("flavor", "list")}
    assert set(flavors) == {"m1.tiny", "m1.small", "m1.medium", "m1.large", "m1.xlarge"}
    assert flavors["m1.tiny"]["ID"] == "1" and flavors["m1.tiny"]["RAM"] == 512
    assert osc("flavor", "show", "m1.small")["vcpus"] == 1  # by name: 404, then a list
    zones = osc("availability", "zone", "list", "--compute")
    assert [(z["Zone Name"], z["Zone Status"]) for z in zones] == [
        ("private", "available"),
        ("public", "available"),
    ]
    zones = osc("availability", "zone", "list", "--compute", "--long")
    assert {z["Host Name"] for z in zones} == {"private", "public"}  # the admin sees hosts


def test_server_life_cycle(canopy_server: CanopyServer) -> None:
    osc = canopy_server.openstack
    create = ("server", "create", "--wait", "--image", "cirros", "--flavor", "m1.tiny")
    a = osc(*create, "--nic", "none", "a")
    assert a["status"] == "ACTIVE"
    assert a["OS-EXT-AZ:availability_zone"] == "private"  # the scheduler chose the free cloud
    b = osc(*create, "--nic", "none", "--availability-zone", "public", "b")
    assert b["status"] == "ACTIVE" and b["OS-EXT-AZ:availability_zone"] == "public"

    listed = {s["Name"]: s for s in osc("server", "list")}
    assert set(listed) >= {"a", "b"}
    assert listed["a"]["Status"] == "ACTIVE" and listed["a"]["Flavor"] == "m1.tiny"
    assert listed["a"]["Image"] == "cirros"
    shown = osc("server", "show", "a")  # by name: a clean 404, then ?name=a
    assert shown["id"] == a["id"] and shown["addresses"]["private"]
    assert shown["flavor"]["original_name"] == "m1.tiny"
    assert osc("server", "list", "--name", "^a$")[0]["ID"] == a["id"]
    assert len(osc("server", "list", "--limit", "1")) == 1

    osc("server", "stop", "a", json_output=False)
    stopped = _until_status(canopy_server, "a", "SHUTOFF")
    assert stopped["OS-EXT-STS:vm_state"] == "stopped"
    err = canopy_server.openstack_fail("server", "stop", "a")[1]
    assert "409" in err or "Cannot 'stop'" in err
    osc("server", "start", "a", json_output=False)
    _until_status(canopy_server, "a", "ACTIVE")
    osc("server", "reboot", "a", json_output=False)
    _until_status(canopy_server, "a", "ACTIVE")

    events = osc("server", "event", "list", "a", "--long")
    assert [e["Action"] for e in events] == ["reboot", "start", "stop", "create"]
    created = events[-1]
    assert "placed on private" in created["Message"]
    shown_event = osc("server", "event", "show", "a", created["Request ID"])
    assert shown_event["action"] == "create"
    names = [e["event"] for e in shown_event["events"]]
    assert "schedule (attempt 1)" in names and "spawn (attempt 1)" in names
    schedule = next(e for e in shown_event["events"] if e["event"].startswith("schedule"))
    assert schedule["result"] == "Success"
    assert schedule["traceback"].startswith("placed on private")  # the admin sees details

    osc("server", "delete", "--wait", "a", json_output=False)
    rc, err = canopy_server.openstack_fail("server", "show", "a")
    assert rc == 1 and "No Server found" in err
    deleted = osc("server", "list", "--changes-since", "2000-01-01T00:00:00Z", "--all-projects")
    assert "a" not in [s["Name"] for s in deleted]  # OSC sends deleted=False: live ones only
    osc("server", "delete", "--wait", "b", json_output=False)


def test_server_properties(canopy_server: CanopyServer) -> None:
    """`server set/unset --property` (POST .../metadata, DELETE .../metadata/{key}) and the
    properties `server show` reads back."""
    osc = canopy_server.openstack
    create = ("server", "create", "--wait", "--image", "cirros", "--flavor", "m1.tiny")
    osc(*create, "--nic", "none", "--property", "made=at-create", "props")
    osc("server", "set", "--property", "k=v", "--property", "x=y", "props", json_output=False)
    shown = osc("server", "show", "props")
    assert shown["properties"] == {"made": "at-create", "k": "v", "x": "y"}
    osc("server", "unset", "--property", "x", "props", json_output=False)
    assert osc("server", "show", "props")["properties"] == {"made": "at-create", "k": "v"}
    rc, err = canopy_server.openstack_fail("server", "set", "--property", "canopy:x=1", "props")
    assert rc == 1 and "reserved for canopy" in err
    rc, err = canopy_server.openstack_fail("server", "unset", "--property", "nope", "props")
    assert rc == 1 and "Metadata item was not found" in err
    assert osc("server", "show", "props")["properties"] == {"made": "at-create", "k": "v"}
    osc("server", "delete", "--wait", "props", json_output=False)


def test_old_and_pinned_microversions(canopy_server: CanopyServer) -> None:
    osc = canopy_server.openstack
    env = canopy_server.env(OS_COMPUTE_API_VERSION="2.1")
    # At 2.1 OSC sends "networks": [] and reads the flavor as {id, links}.
    old = osc("server", "create", "--wait", "--image", "cirros", "--flavor", "1", "old", env=env)
    assert old["status"] == "ACTIVE"
    env = canopy_server.env(OS_COMPUTE_API_VERSION="2.79")
    pinned = osc("server", "show", "old", env=env)
    assert pinned["id"] == old["id"] and pinned["locked"] is False
    rc, _ = canopy_server.openstack_fail(
        "server", "list", env=canopy_server.env(OS_COMPUTE_API_VERSION="2.80")
    )
    assert rc == 1  # above the advertised maximum
    osc("server", "delete", "--wait", "old", json_output=False)


def test_errors(canopy_server: CanopyServer) -> None:
    fail = canopy_server.openstack_fail
    create = ("server", "create", "--image", "cirros", "--nic", "none")
    assert "No Flavor found" in fail(*create, "--flavor", "m9.huge", "x")[1]
    assert "No Image found" in fail("server", "create", "--image", "nope", "--flavor", "1", "x")[1]
    err = fail(*create, "--flavor", "1", "--availability-zone", "mars", "x")[1]
    assert "400" in err and "mars" in err
    assert "No Server found" in fail("server", "show", "nope")[1]
