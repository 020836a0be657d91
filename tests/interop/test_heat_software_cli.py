"""Heat's software configs and deployments through the real `openstack software config ...`
and `openstack software deployment ...` (python-heatclient) against a real `canopy up`:
what an operator deploying to a server by hand does, the agent's report sent as heatclient's
`software_deployments.update` sends it."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from .conftest import CanopyServer


def test_configs_and_deployments_with_the_real_client(
    canopy_server: CanopyServer, tmp_path: Path
) -> None:
    osc = canopy_server.openstack
    script = tmp_path / "hello.sh"
    script.write_text("#!/bin/sh\necho hello $foo\n")
    definition = tmp_path / "io.yaml"
    definition.write_text("inputs:\n- name: foo\n  default: d\noutputs:\n- name: result\n")
    made = osc(
        "software", "config", "create", "--config-file", str(script),
        "--definition-file", str(definition), "--group", "script", "hello",
    )  # fmt: skip
    assert (made["name"], made["group"]) == ("hello", "script")
    assert made["config"] == "#!/bin/sh\necho hello $foo\n"
    assert [i["name"] for i in made["inputs"]] == ["foo"]
    listed = osc("software", "config", "list")
    assert [(c["id"], c["name"]) for c in listed] == [(made["id"], "hello")]
    shown = osc("software", "config", "show", made["id"])
    assert shown["id"] == made["id"] and shown["outputs"][0]["name"] == "result"

    # `deployment create` derives a config with the deploy_* inputs, then deploys it.
    sd = osc(
        "software", "deployment", "create", "--config", made["id"], "--server", "srv-1",
        "--signal-transport", "NO_SIGNAL", "--input-value", "foo=bar", "dep",
    )  # fmt: skip
    assert (sd["server_id"], sd["action"], sd["status"]) == ("srv-1", "UPDATE", "IN_PROGRESS")
    assert sd["config_id"] != made["id"]
    [listed_sd] = osc("software", "deployment", "list", "--server", "srv-1")
    assert listed_sd["id"] == sd["id"]
    done = canopy_server.run_openstack("software", "deployment", "metadata", "show", "srv-1")
    assert done.returncode == 0, done.stderr
    [derived] = json.loads(done.stdout)
    assert (derived["id"], derived["name"], derived["group"]) == (sd["config_id"], "dep", "script")
    values = {i["name"]: i.get("value") for i in derived["inputs"]}
    assert values["foo"] == "bar" and values["deploy_signal_transport"] == "NO_SIGNAL"

    # The agent's report, as heatclient's software_deployments.update sends it.
    token = canopy_server.token()
    project = osc("token", "issue")["project_id"]
    r = httpx.put(
        f"{canopy_server.base_url}/orchestration/v1/{project}/software_deployments/{sd['id']}",
        json={"status": "COMPLETE", "status_reason": "Outputs received",
              "output_values": {"result": "hello bar", "deploy_status_code": 0}},
        headers={"X-Auth-Token": token},
        timeout=30,
    )  # fmt: skip
    assert r.status_code == 200, r.text
    shown_sd = osc("software", "deployment", "show", sd["id"])
    assert (shown_sd["status"], shown_sd["status_reason"]) == ("COMPLETE", "Outputs received")
    out = canopy_server.run_openstack(
        "software", "deployment", "output", "show", sd["id"], "result"
    )
    assert out.returncode == 0 and "hello bar" in out.stdout, out.stderr

    # The source config is referenced by nothing (the deployment names the derived one).
    canopy_server.openstack("software", "config", "delete", made["id"], json_output=False)
    # `deployment delete` deletes the deployment, then its derived config.
    osc("software", "deployment", "delete", sd["id"], json_output=False)
    assert osc("software", "deployment", "list") == []
    assert osc("software", "config", "list") == []
    rc, err = canopy_server.openstack_fail("software", "config", "show", made["id"])
    assert rc == 1 and "not found" in err.lower()
