"""`openstack stack abandon` and `openstack stack adopt` (python-heatclient, unchanged)
against a real `canopy up`: the abandoned stack's server is adopted by a new stack, which
then deletes it; an adopt naming a server that does not exist fails with the reason."""

from __future__ import annotations

import json
import time
from pathlib import Path

from .conftest import CanopyServer
from .test_heat_cli import TEMPLATE, _waited, create_web


def test_abandon_then_adopt_with_the_real_client(
    canopy_server: CanopyServer, tmp_path: Path
) -> None:
    path = tmp_path / "stack.yaml"
    path.write_text(TEMPLATE)
    osc = canopy_server.openstack
    created = create_web(canopy_server, path)
    assert created["stack_status"] == "CREATE_COMPLETE", created
    [server] = [s["ID"] for s in osc("server", "list")]

    data = tmp_path / "web.json"
    osc("stack", "abandon", "web", "--output-file", str(data), json_output=False)
    assert osc("stack", "list") == []
    assert [s["ID"] for s in osc("server", "list")] == [server]

    adopted = _waited(canopy_server, "stack", "adopt", "--adopt-file", str(data), "--wait", "web2")
    assert adopted["stack_status"] == "ADOPT_COMPLETE", adopted
    resources = {r["resource_name"]: r for r in osc("stack", "resource", "list", "web2")}
    assert resources["vm"]["physical_resource_id"] == server
    assert {r["resource_status"] for r in resources.values()} == {"ADOPT_COMPLETE"}
    assert osc("stack", "output", "show", "web2", "said")["output_value"] == "hi"
    assert [s["ID"] for s in osc("server", "list")] == [server]

    # The same data once more: the server is the first adopter's, so this adopt fails.
    rc, err = canopy_server.openstack_fail(
        "stack", "adopt", "--adopt-file", str(data), "--wait", "web3"
    )
    assert rc == 1 and "Stack web3 ADOPT_FAILED" in err
    reason = osc("stack", "show", "web3")["stack_status_reason"]
    assert f"resources.vm: Server {server} already belongs to a stack." in reason
    osc("stack", "delete", "--yes", "--wait", "web3", json_output=False)
    assert [s["ID"] for s in osc("server", "list")] == [server]

    # A server id that is nobody's fails the adopt, with the reason.
    edited = json.loads(data.read_text())
    edited["resources"]["vm"]["resource_id"] = "00000000-0000-0000-0000-000000000000"
    data.write_text(json.dumps(edited))
    rc, err = canopy_server.openstack_fail(
        "stack", "adopt", "--adopt-file", str(data), "--wait", "nobody"
    )
    assert rc == 1 and "Stack nobody ADOPT_FAILED" in err
    reason = osc("stack", "show", "nobody")["stack_status_reason"]
    assert "Server 00000000-0000-0000-0000-000000000000 could not be found." in reason
    osc("stack", "delete", "--yes", "--wait", "nobody", json_output=False)

    osc("stack", "delete", "--yes", "--wait", "web2", json_output=False)
    assert osc("stack", "list") == []
    assert osc("server", "list") == []


TREE = """heat_template_version: 2018-08-31
resources:
  group:
    type: OS::Heat::ResourceGroup
    properties:
      count: 2
      resource_def:
        type: OS::Nova::Server
        properties: {flavor: m1.small, image: cirros, name: "m%index%"}
  box:
    type: box.yaml
outputs:
  box: {value: {get_attr: [box, vm]}}
"""
BOX = """heat_template_version: 2018-08-31
resources:
  vm:
    type: OS::Nova::Server
    properties: {flavor: m1.small, image: cirros}
outputs:
  vm: {value: {get_resource: vm}}
"""


def test_a_group_and_a_template_resource_round_trip_with_the_real_client(
    canopy_server: CanopyServer, tmp_path: Path
) -> None:
    (tmp_path / "box.yaml").write_text(BOX)
    path = tmp_path / "tree.yaml"
    path.write_text(TREE)
    osc = canopy_server.openstack
    created = _waited(canopy_server, "stack", "create", "-t", str(path), "--wait", "tree")
    assert created["stack_status"] == "CREATE_COMPLETE", created
    servers = sorted(s["ID"] for s in osc("server", "list"))
    assert len(servers) == 3

    data = tmp_path / "tree.json"
    osc("stack", "abandon", "tree", "--output-file", str(data), json_output=False)
    assert osc("stack", "list") == []
    saved = json.loads(data.read_text())
    assert set(saved["resources"]["group"]["resources"]) == {"0", "1"}

    # A copy whose second member has no entry, adopted with rollback enabled: it rolls
    # back, letting go of everything, and deletes nothing.
    broken = json.loads(data.read_text())
    del broken["resources"]["group"]["resources"]["1"]
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    rc, err = canopy_server.openstack_fail(
        "stack", "adopt", "--adopt-file", str(tmp_path / "broken.json"),
        "--enable-rollback", "--wait", "broken",
    )  # fmt: skip
    assert rc == 1 and "Stack broken ADOPT_FAILED" in err, err
    # The rollback follows the failure: poll (a real process, no fake clock to step).
    deadline = time.monotonic() + 60
    shown = osc("stack", "show", "broken")
    while shown["stack_status"].endswith("IN_PROGRESS") and time.monotonic() < deadline:
        time.sleep(0.2)
        shown = osc("stack", "show", "broken")
    assert shown["stack_status"] == "ROLLBACK_COMPLETE", shown
    assert sorted(s["ID"] for s in osc("server", "list")) == servers
    osc("stack", "delete", "--yes", "--wait", "broken", json_output=False)

    adopted = _waited(canopy_server, "stack", "adopt", "--adopt-file", str(data), "--wait", "t2")
    assert adopted["stack_status"] == "ADOPT_COMPLETE", adopted
    assert sorted(s["ID"] for s in osc("server", "list")) == servers  # none made
    listed = osc("stack", "resource", "list", "t2", "--nested-depth", "2")
    held = {r["physical_resource_id"] for r in listed}
    assert set(servers) <= held
    assert osc("stack", "output", "show", "t2", "box")["output_value"] in servers

    osc("stack", "delete", "--yes", "--wait", "t2", json_output=False)
    assert osc("server", "list") == []
