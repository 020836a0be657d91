"""Software deployments over HTTP, with the test as the agent on the server: it reads the
server resource's metadata (os-collect-config's heat collector), finds its deployment and
POSTs the result to `deploy_signal_id` (heat-config-notify), with no Keystone token."""

from __future__ import annotations

from typing import Any

import httpx

from canopy.orchestration.resources import software_deployment
from tests.api.conftest import Api
from tests.orchestration.helpers import resources, settle, stack

from .test_signals import path_of
from .test_stacks import assert_heat_fault

SCRIPT = "#!/bin/sh\necho hello $foo > $heat_outputs_path.result\n"


def template(transport: str = "CFN_SIGNAL") -> dict[str, Any]:
    return {
        "heat_template_version": "2018-08-31",
        "resources": {
            "config": {
                "type": "OS::Heat::SoftwareConfig",
                "properties": {
                    "group": "script",
                    "config": SCRIPT,
                    "inputs": [{"name": "foo"}, {"name": "bar", "default": "b"}],
                    "outputs": [{"name": "result"}],
                },
            },
            "server": {
                "type": "OS::Nova::Server",
                "properties": {
                    "flavor": "m1.small",
                    "image": "cirros",
                    "user_data_format": "SOFTWARE_CONFIG",
                },
            },
            "deployment": {
                "type": "OS::Heat::SoftwareDeployment",
                "properties": {
                    "config": {"get_resource": "config"},
                    "server": {"get_resource": "server"},
                    "input_values": {"foo": "fooooo", "extra": 3},
                    "signal_transport": transport,
                },
            },
        },
        "outputs": {
            "result": {"value": {"get_attr": ["deployment", "result"]}},
            "stdout": {"value": {"get_attr": ["deployment", "deploy_stdout"]}},
            "stderr": {"value": {"get_attr": ["deployment", "deploy_stderr"]}},
            "status_code": {"value": {"get_attr": ["deployment", "deploy_status_code"]}},
        },
    }


def base(api: Api, name: str, sid: str) -> str:
    return f"/orchestration/v1/{api.admin.project_id}/stacks/{name}/{sid}"


async def _create(api: Api, name: str, body: dict[str, Any]) -> str:
    pid = api.admin.project_id
    r = await api.client.post(
        f"/orchestration/v1/{pid}/stacks", json={"stack_name": name, "template": body}
    )
    assert r.status_code == 201, r.text
    sid: str = r.json()["stack"]["id"]
    return sid


async def _deploying(api: Api, name: str, sid: str) -> dict[str, Any]:
    """Step until the server's metadata shows the deployment; the agent's view of it."""
    found: dict[str, Any] = {}

    async def shown() -> bool:
        r = await api.client.get(f"{base(api, name, sid)}/resources/server/metadata")
        if r.status_code != 200:
            return False
        deployments = r.json()["metadata"].get("deployments") or []
        if deployments:
            found.update(deployments[0])
        return bool(deployments)

    await api.plane.run_until(shown)
    return found


async def _outputs(api: Api, name: str, sid: str) -> dict[str, Any]:
    r = await api.client.get(base(api, name, sid))
    return {o["output_key"]: o.get("output_value") for o in r.json()["stack"]["outputs"]}


def _anonymous(api: Api) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api.app), base_url="http://canopy.test"
    )


async def test_the_agent_reads_its_deployment_and_signals_the_result(api: Api) -> None:
    sid = await _create(api, "sd", template())
    deployed = await _deploying(api, "sd", sid)
    rows = await resources(api.plane, sid)
    assert rows["deployment"].status == "IN_PROGRESS"
    # Heat's derived config: the config's inputs with their values, the undeclared value,
    # then the deploy_* inputs; the outputs as Heat stores them.
    assert set(deployed) == {
        "id",
        "name",
        "group",
        "creation_time",
        "config",
        "inputs",
        "outputs",
        "options",
    }
    assert (deployed["group"], deployed["config"]) == ("script", SCRIPT)
    assert deployed["name"].startswith("sd-config-")
    assert deployed["outputs"] == [{"name": "result", "type": "String", "error_output": False}]
    inputs = {i["name"]: i for i in deployed["inputs"]}
    assert [i["name"] for i in deployed["inputs"]] == [
        "foo",
        "bar",
        "extra",
        "deploy_server_id",
        "deploy_action",
        "deploy_stack_id",
        "deploy_resource_name",
        "deploy_signal_transport",
        "deploy_signal_id",
        "deploy_signal_verb",
    ]
    assert inputs["foo"] == {"name": "foo", "type": "String", "value": "fooooo"}
    assert inputs["bar"] == {"name": "bar", "type": "String", "default": "b", "value": "b"}
    assert inputs["extra"] == {"name": "extra", "type": "String", "value": 3}
    assert inputs["deploy_server_id"]["value"] == rows["server"].server_id
    assert inputs["deploy_action"]["value"] == "CREATE"
    assert inputs["deploy_stack_id"]["value"] == f"sd/{sid}"
    assert inputs["deploy_resource_name"]["value"] == "deployment"
    assert inputs["deploy_signal_verb"]["value"] == "POST"
    url = inputs["deploy_signal_id"]["value"]
    assert "/resources/deployment/signal?signal_token=" in url

    async with _anonymous(api) as agent:
        # Bad bodies are refused and write nothing; a forged token is 403; this token
        # signals nothing else.
        assert_heat_fault(await agent.post(path_of(url), json=["not", "a", "map"]), 400)
        assert_heat_fault(await agent.post(path_of(url), content=b"{nope"), 400)
        forged = path_of(url).split("signal_token=")[0] + "signal_token=forged"
        assert_heat_fault(await agent.post(forged, json={}), 403)
        other = path_of(url).replace("/resources/deployment/", "/resources/config/")
        assert_heat_fault(await agent.post(other, json={}), 403)
        for _ in range(5):
            await api.plane.step()
        assert (await stack(api.plane, sid)).status == "IN_PROGRESS"

        result = {
            "deploy_stdout": "hello fooooo",
            "deploy_stderr": "",
            "deploy_status_code": 0,
            "result": "hello fooooo",
        }
        r = await agent.post(path_of(url), json=result)
        assert r.status_code == 200, r.text
    done = await settle(api.plane, sid)
    assert (done.action, done.status) == ("CREATE", "COMPLETE"), done.status_reason
    assert await _outputs(api, "sd", sid) == {
        "result": "hello fooooo",
        "stdout": "hello fooooo",
        "stderr": "",
        "status_code": 0,
    }

    # Stack delete: the deployment leaves the server's metadata with its row; nothing stays.
    r = await api.client.delete(base(api, "sd", sid))
    assert r.status_code == 204, r.text
    gone = await settle(api.plane, sid)
    assert (gone.action, gone.status) == ("DELETE", "COMPLETE"), gone.status_reason
    assert await resources(api.plane, sid) == {}
    async with api.plane.db.read() as s:
        server_id = rows["server"].server_id
        assert server_id is not None
        left = await software_deployment.server_deployments(s, api.admin.project_id, server_id)
        assert left == []


async def test_a_non_zero_status_code_fails_the_stack_with_heats_reason(api: Api) -> None:
    sid = await _create(api, "sdfail", template())
    deployed = await _deploying(api, "sdfail", sid)
    url = next(i["value"] for i in deployed["inputs"] if i["name"] == "deploy_signal_id")
    async with _anonymous(api) as agent:
        body = {"deploy_stdout": "", "deploy_stderr": "boom", "deploy_status_code": 1}
        r = await agent.post(path_of(url), json=body)
        assert r.status_code == 200, r.text
    done = await settle(api.plane, sid)
    assert done.status == "FAILED"
    assert done.status_reason.endswith(
        "resources.deployment: Error: Deployment to server failed: deploy_status_code : "
        "Deployment exited with non-zero status code: 1"
    ), done.status_reason
    rows = await resources(api.plane, sid)
    assert rows["deployment"].attributes["deploy_stderr"] == "boom"


async def test_no_signal_completes_at_once(api: Api) -> None:
    sid = await _create(api, "nosig", template("NO_SIGNAL"))
    done = await settle(api.plane, sid)
    assert (done.action, done.status) == ("CREATE", "COMPLETE"), done.status_reason
    r = await api.client.get(f"{base(api, 'nosig', sid)}/resources/server/metadata")
    [deployed] = r.json()["metadata"]["deployments"]
    names = [i["name"] for i in deployed["inputs"]]
    assert "deploy_signal_id" not in names and "deploy_signal_verb" not in names
    assert await _outputs(api, "nosig", sid) == {
        "result": None,
        "stdout": None,
        "stderr": None,
        "status_code": None,
    }


async def test_unsupported_transports_are_refused_naming_the_supported_ones(api: Api) -> None:
    pid = api.admin.project_id
    for transport in ("HEAT_SIGNAL", "TEMP_URL_SIGNAL", "ZAQAR_SIGNAL"):
        r = await api.client.post(
            f"/orchestration/v1/{pid}/stacks",
            json={"stack_name": "refused", "template": template(transport)},
        )
        assert_heat_fault(r, 400)
        assert f"signal_transport {transport} is not supported" in r.text
        assert "CFN_SIGNAL" in r.text and "NO_SIGNAL" in r.text
    r = await api.client.get(f"/orchestration/v1/{pid}/stacks")
    assert r.json()["stacks"] == []


async def test_a_group_member_takes_its_agents_signal_at_its_own_url(api: Api) -> None:
    body = template()
    deployment = body["resources"].pop("deployment")["properties"]
    deployment.pop("server")
    deployment["servers"] = {"only": {"get_resource": "server"}}
    body["resources"]["group"] = {
        "type": "OS::Heat::SoftwareDeploymentGroup",
        "properties": deployment,
    }
    body["outputs"] = {"results": {"value": {"get_attr": ["group", "result"]}}}
    sid = await _create(api, "sdg", body)
    deployed = await _deploying(api, "sdg", sid)
    url = next(i["value"] for i in deployed["inputs"] if i["name"] == "deploy_signal_id")
    assert "/resources/group.only/signal?signal_token=" in url
    async with _anonymous(api) as agent:
        # The group itself takes no signal; the member's token signals only the member.
        group_url = path_of(url).replace("/resources/group.only/", "/resources/group/")
        assert_heat_fault(await agent.post(group_url, json={}), 403)
        r = await agent.post(path_of(url), json={"deploy_status_code": 0, "result": "ok"})
        assert r.status_code == 200, r.text
    done = await settle(api.plane, sid)
    assert (done.action, done.status) == ("CREATE", "COMPLETE"), done.status_reason
    assert await _outputs(api, "sdg", sid) == {"results": {"only": "ok"}}


async def test_the_software_deployments_api_lists_them_and_a_servers_metadata(
    api: Api,
) -> None:
    sid = await _create(api, "listed", template("NO_SIGNAL"))
    done = await settle(api.plane, sid)
    assert done.status == "COMPLETE", done.status_reason
    rows = await resources(api.plane, sid)
    server_id = rows["server"].server_id
    heat = f"/orchestration/v1/{api.admin.project_id}/software_deployments"
    r = await api.client.get(heat)
    assert r.status_code == 200, r.text
    [listed] = r.json()["software_deployments"]
    assert listed["id"] == rows["deployment"].physical_resource_id
    assert (listed["server_id"], listed["action"], listed["status"]) == (
        server_id,
        "CREATE",
        "COMPLETE",
    )
    assert listed["status_reason"] == "Not waiting for outputs signal"
    assert listed["input_values"] == {"foo": "fooooo", "extra": 3}
    r = await api.client.get(f"{heat}?server_id=another")
    assert r.json() == {"software_deployments": []}
    # What `openstack software deployment metadata show` gives: the server's configs, as
    # in the server resource's metadata.
    r = await api.client.get(f"{heat}/metadata/{server_id}")
    assert r.status_code == 200, r.text
    [config] = r.json()["metadata"]
    assert config["id"] == listed["config_id"]
    shown = await api.client.get(f"{base(api, 'listed', sid)}/resources/server/metadata")
    assert shown.json()["metadata"]["deployments"] == [config]
    r = await api.client.get(f"{heat}/metadata/another")
    assert r.json() == {"metadata": []}
