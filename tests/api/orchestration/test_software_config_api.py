"""Heat's software config and deployment REST API: what `openstack software config ...` and
`openstack software deployment ...` send, answered with Heat's bodies and statuses, one
project's objects invisible to another, and bad bodies refused with nothing written."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from sqlalchemy import func, select

from canopy.orchestration import software_checks
from canopy.store.models import ServerUserData, SoftwareConfigRow, SoftwareDeploymentRow
from tests.api.conftest import Api
from tests.api.tokens import Caller, caller
from tests.orchestration.helpers import resources, settle

from .test_software_deployment_api import _create, template
from .test_stacks import assert_heat_fault

SCRIPT = "#!/bin/sh -x\necho hello"


def heat(api: Api, project_id: str | None = None) -> str:
    return f"/orchestration/v1/{project_id or api.admin.project_id}"


async def _config(api: Api, **body: Any) -> dict[str, Any]:
    r = await api.client.post(
        f"{heat(api)}/software_configs",
        json={"name": "cfg", "group": "script", "config": SCRIPT, **body},
    )
    assert r.status_code == 200, r.text
    config: dict[str, Any] = r.json()["software_config"]
    return config


async def _deploy(api: Api, config_id: str, server_id: str = "dummy_server") -> dict[str, Any]:
    r = await api.client.post(
        f"{heat(api)}/software_deployments",
        json={"config_id": config_id, "server_id": server_id, "action": "CREATE"},
    )
    assert r.status_code == 200, r.text
    deployment: dict[str, Any] = r.json()["software_deployment"]
    return deployment


async def _counts(api: Api) -> tuple[int, int]:
    async with api.plane.db.read() as s:
        configs = await s.scalar(select(func.count()).select_from(SoftwareConfigRow))
        deployments = await s.scalar(select(func.count()).select_from(SoftwareDeploymentRow))
    return int(configs or 0), int(deployments or 0)


async def test_a_config_is_created_shown_listed_and_deleted_in_heats_shapes(api: Api) -> None:
    made = await _config(
        api,
        inputs=[{"name": "foo"}, {"name": "bar", "default": "b", "replace_on_change": True}],
        outputs=[{"name": "result", "description": "what it says"}],
        options={"k": "v"},
    )
    assert set(made) == {
        "id",
        "name",
        "group",
        "config",
        "inputs",
        "outputs",
        "options",
        "creation_time",
    }
    assert (made["name"], made["group"], made["config"]) == ("cfg", "script", SCRIPT)
    # Heat's software_config_io `as_dict`: type String by default, error_output false.
    assert made["inputs"] == [
        {"name": "foo", "type": "String"},
        {"name": "bar", "type": "String", "default": "b", "replace_on_change": True},
    ]
    assert made["outputs"] == [
        {"name": "result", "description": "what it says", "type": "String", "error_output": False}
    ]
    assert made["options"] == {"k": "v"}
    url = f"{heat(api)}/software_configs/{made['id']}"
    r = await api.client.get(url)
    assert r.status_code == 200 and r.json() == {"software_config": made}
    r = await api.client.get(f"{heat(api)}/software_configs")
    assert r.json() == {
        "software_configs": [
            {k: made[k] for k in ("id", "name", "group", "creation_time")},
        ]
    }
    assert (await api.client.delete(url)).status_code == 204
    assert "not found" in assert_heat_fault(await api.client.get(url), 404)
    assert_heat_fault(await api.client.delete(url), 404)


async def test_a_config_without_group_or_io_is_ungrouped_with_empty_lists(api: Api) -> None:
    r = await api.client.post(f"{heat(api)}/software_configs", json={})
    assert r.status_code == 200, r.text
    made = r.json()["software_config"]
    assert (made["group"], made["inputs"], made["outputs"], made["options"]) == (
        "Heat::Ungrouped",
        [],
        [],
        {},
    )
    assert made["name"] is None and made["config"] is None


async def test_configs_list_newest_first_with_limit_and_marker(api: Api) -> None:
    ids = []
    for n in range(3):
        ids.append((await _config(api, name=f"c{n}"))["id"])
        api.plane.clock.advance(1)
    base = f"{heat(api)}/software_configs"
    r = await api.client.get(base)
    assert [c["id"] for c in r.json()["software_configs"]] == ids[::-1]
    r = await api.client.get(f"{base}?limit=2")
    assert [c["id"] for c in r.json()["software_configs"]] == [ids[2], ids[1]]
    r = await api.client.get(f"{base}?limit=2&marker={ids[1]}")
    assert [c["id"] for c in r.json()["software_configs"]] == [ids[0]]
    for bad in ("x", "-1", "1.5", "9" * 20):
        assert_heat_fault(await api.client.get(f"{base}?limit={bad}"), 400)
    assert_heat_fault(await api.client.get(f"{base}?marker=nothing"), 404)


async def test_a_deployment_is_created_shown_updated_listed_and_deleted(api: Api) -> None:
    config = await _config(api)
    made = await _deploy(api, config["id"])
    assert made["config_id"] == config["id"] and made["server_id"] == "dummy_server"
    assert (made["action"], made["status"], made["input_values"]) == ("CREATE", None, None)
    assert "updated_time" not in made
    url = f"{heat(api)}/software_deployments/{made['id']}"
    assert (await api.client.get(url)).json() == {"software_deployment": made}
    api.plane.clock.advance(5)
    r = await api.client.put(
        url,
        json={
            "action": "ACTION1",
            "status": "COMPLETE",
            "status_reason": "completed",
            "output_values": {"deploy_stdout": "hi", "deploy_status_code": 0},
            "input_values": None,  # null: left as it is (Heat)
        },
    )
    assert r.status_code == 200, r.text
    updated = r.json()["software_deployment"]
    assert (updated["action"], updated["status"], updated["status_reason"]) == (
        "ACTION1",
        "COMPLETE",
        "completed",
    )
    assert updated["output_values"] == {"deploy_stdout": "hi", "deploy_status_code": 0}
    assert updated["updated_time"] > updated["creation_time"]
    r = await api.client.get(f"{heat(api)}/software_deployments?server_id=dummy_server")
    assert r.json() == {"software_deployments": [updated]}
    r = await api.client.get(f"{heat(api)}/software_deployments?server_id=another")
    assert r.json() == {"software_deployments": []}
    # A config a deployment references stays.
    config_url = f"{heat(api)}/software_configs/{config['id']}"
    assert "referenced" in assert_heat_fault(await api.client.delete(config_url), 409)
    assert (await api.client.delete(url)).status_code == 204
    assert_heat_fault(await api.client.get(url), 404)
    assert (await api.client.delete(config_url)).status_code == 204
    assert await _counts(api) == (0, 0)


async def test_a_servers_metadata_has_its_api_and_stack_deployments_by_config_name(
    api: Api,
) -> None:
    sid = await _create(api, "mixed", template("NO_SIGNAL"))
    done = await settle(api.plane, sid)
    assert done.status == "COMPLETE", done.status_reason
    rows = await resources(api.plane, sid)
    server_id = str(rows["server"].server_id)
    stack_made = rows["deployment"].physical_resource_id
    first = await _config(api, name="aaa-first")
    last = await _config(api, name="zzz-last")
    await _deploy(api, last["id"], server_id)
    await _deploy(api, first["id"], server_id)
    await _deploy(api, first["id"], "elsewhere")
    r = await api.client.get(f"{heat(api)}/software_deployments/metadata/{server_id}")
    assert r.status_code == 200, r.text
    r_metadata = r.json()["metadata"]
    names = [c["name"] for c in r_metadata]
    assert names == ["aaa-first", "mixed-config-" + rows["config"].id[:12], "zzz-last"]
    assert r.json()["metadata"][0] == first
    # The server resource's metadata (what os-collect-config polls) shows the same.
    shown = await api.client.get(f"{heat(api)}/stacks/mixed/{sid}/resources/server/metadata")
    assert shown.json()["metadata"]["deployments"] == r.json()["metadata"]
    # The stack's deployment is listed with the API's, shown by id, and changes only with
    # its stack.
    r = await api.client.get(f"{heat(api)}/software_deployments?server_id={server_id}")
    listed = r.json()["software_deployments"]
    assert len(listed) == 3 and listed[0]["id"] == stack_made
    url = f"{heat(api)}/software_deployments/{stack_made}"
    assert (await api.client.get(url)).json()["software_deployment"] == listed[0]
    assert "stack" in assert_heat_fault(await api.client.put(url, json={"status": "X"}), 409)
    assert_heat_fault(await api.client.delete(url), 409)
    # The stack's configs are shown by id, as Heat shows them (one table there): its
    # config resource and its deployment's derived config (`deployment show --long`).
    # Neither is listed, and both go only with their stack.
    configs = f"{heat(api)}/software_configs"
    source = (await api.client.get(f"{configs}/{rows['config'].id}")).json()["software_config"]
    assert (source["name"], source["group"], source["config"]) == (
        "mixed-config-" + rows["config"].id[:12],
        "script",
        template()["resources"]["config"]["properties"]["config"],
    )
    assert source["inputs"][1] == {"name": "bar", "type": "String", "default": "b"}
    r = await api.client.get(f"{configs}/{listed[0]['config_id']}")
    assert r.json()["software_config"] == next(
        c for c in r_metadata if c["id"] == listed[0]["config_id"]
    )
    listed_ids = {c["id"] for c in (await api.client.get(configs)).json()["software_configs"]}
    assert listed_ids == {first["id"], last["id"]}
    for config_id in (rows["config"].id, listed[0]["config_id"]):
        assert "stack" in assert_heat_fault(await api.client.delete(f"{configs}/{config_id}"), 409)


async def _other(api: Api) -> Caller:
    return await caller(api.plane.db, api.plane.clock, project="other", user="o", role="member")


async def test_another_projects_configs_and_deployments_are_not_found(api: Api) -> None:
    config = await _config(api)
    deployment = await _deploy(api, config["id"])
    other = await _other(api)
    mine = heat(api, other.project_id)
    h = other.headers
    for path in (f"software_configs/{config['id']}", f"software_deployments/{deployment['id']}"):
        assert_heat_fault(await api.client.get(f"{mine}/{path}", headers=h), 404)
        assert_heat_fault(await api.client.delete(f"{mine}/{path}", headers=h), 404)
    r = await api.client.put(
        f"{mine}/software_deployments/{deployment['id']}", json={"status": "X"}, headers=h
    )
    assert_heat_fault(r, 404)
    for path in ("software_configs", "software_deployments"):
        r = await api.client.get(f"{mine}/{path}", headers=h)
        assert r.json() == {path: []}
    r = await api.client.get(f"{mine}/software_deployments/metadata/dummy_server", headers=h)
    assert r.json() == {"metadata": []}
    # Nor may a deployment of the other project name this project's config.
    r = await api.client.post(
        f"{mine}/software_deployments",
        json={"config_id": config["id"], "server_id": "s"},
        headers=h,
    )
    assert f"Config with id {config['id']} not found" in assert_heat_fault(r, 400)
    theirs = await api.client.post(f"{mine}/software_configs", json={"config": "x"}, headers=h)
    r = await api.client.put(
        f"{heat(api)}/software_deployments/{deployment['id']}",
        json={"config_id": theirs.json()["software_config"]["id"]},
    )
    assert_heat_fault(r, 400)
    assert await _counts(api) == (2, 1)
    shown = await api.client.get(f"{heat(api)}/software_deployments/{deployment['id']}")
    assert shown.json()["software_deployment"] == deployment


async def test_a_reader_reads_but_does_not_write(api: Api) -> None:
    member = await caller(api.plane.db, api.plane.clock, project="demo", user="m", role="member")
    reader = await caller(api.plane.db, api.plane.clock, project="demo", user="r", role="reader")
    base = heat(api, member.project_id)
    r = await api.client.post(
        f"{base}/software_configs", json={"config": "x"}, headers=member.headers
    )
    assert r.status_code == 200, r.text
    config_id = r.json()["software_config"]["id"]
    r = await api.client.get(f"{base}/software_configs/{config_id}", headers=reader.headers)
    assert r.status_code == 200
    for method, path, body in (
        ("POST", "software_configs", {"config": "x"}),
        ("DELETE", f"software_configs/{config_id}", None),
        ("POST", "software_deployments", {"config_id": config_id, "server_id": "s"}),
    ):
        r = await api.client.request(method, f"{base}/{path}", json=body, headers=reader.headers)
        assert_heat_fault(r, 403)
    assert await _counts(api) == (1, 0)


BAD_CONFIGS: list[tuple[Any, str]] = [
    ({"name": 5}, "name must be a string"),
    ({"name": "n" * 256}, "name is at most 255"),
    ({"group": ["script"]}, "group must be a string"),
    ({"config": 3}, "config must be a string or a map"),
    ({"options": "x"}, "options must be a map"),
    ({"inputs": {"name": "a"}}, "must be in a list"),
    ({"inputs": ["a"]}, "must be a dict"),
    ({"inputs": [{"type": "String"}]}, "needs a name"),
    ({"inputs": [{"name": "a", "type": "Integer"}]}, "inputs.a.type"),
    ({"inputs": [{"name": "a", "unknown": 1}]}, "Unknown field 'unknown'"),
    ({"inputs": [{"name": "a", "replace_on_change": "yes"}]}, "must be a boolean"),
    ({"outputs": [{"name": "o", "error_output": 1}]}, "must be a boolean"),
    ({"outputs": [{"name": "o", "description": 3}]}, "description must be a string"),
    ({"outputs": [{"name": "o", "default": 3}]}, "Unknown field 'default'"),
    ({"inputs": [{"name": "a"}] * 1001}, "at most 1000"),
    ({"cofig": "x"}, "Unknown field 'cofig'"),
]


@pytest.mark.parametrize(("body", "why"), BAD_CONFIGS)
async def test_a_bad_config_is_400_and_writes_nothing(api: Api, body: Any, why: str) -> None:
    r = await api.client.post(f"{heat(api)}/software_configs", json=body)
    assert why in assert_heat_fault(r, 400)
    assert await _counts(api) == (0, 0)


async def test_a_config_text_longer_than_the_bound_is_400(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(software_checks, "MAX_CONFIG", 16)
    for config in ("x" * 17, {"k": "x" * 16}):
        r = await api.client.post(f"{heat(api)}/software_configs", json={"config": config})
        assert "config is at most 16 bytes" in assert_heat_fault(r, 400)
    assert (
        await api.client.post(f"{heat(api)}/software_configs", json={"config": "x" * 16})
    ).status_code == 200
    assert await _counts(api) == (1, 0)


async def test_a_lone_surrogate_or_a_body_not_an_object_is_400(api: Api) -> None:
    url = f"{heat(api)}/software_configs"
    raw = b'{"config": "echo \\ud800"}'
    r = await api.client.post(url, content=raw, headers={"Content-Type": "application/json"})
    assert_heat_fault(r, 400)
    for body in ([], "x", None):
        assert_heat_fault(await api.client.post(url, json=body), 400)
    assert await _counts(api) == (0, 0)


async def test_a_bad_deployment_is_400_and_writes_nothing(api: Api) -> None:
    config = await _config(api)
    base = f"{heat(api)}/software_deployments"
    good = {"config_id": config["id"], "server_id": "s"}
    bad: list[tuple[Any, str]] = [
        ({"server_id": "s"}, "config_id is required"),
        ({"config_id": config["id"]}, "server_id is required"),
        ({**good, "config_id": 5}, "config_id must be a string"),
        ({**good, "config_id": "nothing"}, "Config with id nothing not found"),
        ({**good, "server_id": "s" * 256}, "server_id is at most 255"),
        ({**good, "input_values": ["a"]}, "input_values must be a map"),
        ({**good, "action": {"a": 1}}, "action must be a string"),
        ({**good, "status_reason": "r" * ((64 << 10) + 1)}, "status_reason is at most"),
        ({**good, "stack_user_project_id": "p" * 65}, "stack_user_project_id is at most 64"),
        ({**good, "output_values": {}}, "Unknown field 'output_values'"),
    ]
    for body, why in bad:
        assert why in assert_heat_fault(await api.client.post(base, json=body), 400), body
    assert await _counts(api) == (1, 0)
    made = await _deploy(api, config["id"])
    url = f"{base}/{made['id']}"
    for body, why in [
        ({"output_values": "x"}, "output_values must be a map"),
        ({"status": 3}, "status must be a string"),
        ({"config_id": "nothing"}, "Config with id nothing not found"),
        ({"server_id": "moved"}, "Unknown field 'server_id'"),
    ]:
        assert why in assert_heat_fault(await api.client.put(url, json=body), 400), body
    assert (await api.client.get(url)).json()["software_deployment"] == made


async def test_a_stacks_deployment_may_name_a_config_made_through_the_api(api: Api) -> None:
    config = await _config(api, name="from-api", inputs=[{"name": "foo", "default": "d"}])
    body = template("NO_SIGNAL")
    del body["resources"]["config"]
    body["resources"]["deployment"]["properties"]["config"] = config["id"]
    sid = await _create(api, "apicfg", body)
    done = await settle(api.plane, sid)
    assert (done.action, done.status) == ("CREATE", "COMPLETE"), done.status_reason
    rows = await resources(api.plane, sid)
    r = await api.client.get(
        f"{heat(api)}/software_deployments/metadata/{rows['server'].server_id}"
    )
    [derived] = r.json()["metadata"]
    assert (derived["name"], derived["group"], derived["config"]) == ("from-api", "script", SCRIPT)
    values = {i["name"]: i.get("value") for i in derived["inputs"]}
    assert values["foo"] == "fooooo" and values["deploy_action"] == "CREATE"
    # Another project's config is not found for a stack either.
    other = await _other(api)
    r = await api.client.post(
        f"{heat(api, other.project_id)}/stacks",
        json={"stack_name": "theirs", "template": body},
        headers=other.headers,
    )
    assert r.status_code == 201, r.text
    done = await settle(api.plane, r.json()["stack"]["id"])
    assert done.status == "FAILED" and "could not be found" in done.status_reason


async def test_a_servers_user_data_may_name_a_config_made_through_the_api(api: Api) -> None:
    config = await _config(api)
    body = {
        "heat_template_version": "2018-08-31",
        "resources": {
            "vm": {
                "type": "OS::Nova::Server",
                "properties": {
                    "flavor": "m1.small",
                    "image": "cirros",
                    "user_data_format": "RAW",
                    "user_data": config["id"],
                },
            }
        },
    }
    sid = await _create(api, "ud", body)
    done = await settle(api.plane, sid)
    assert done.status == "COMPLETE", done.status_reason
    rows = await resources(api.plane, sid)
    async with api.plane.db.read() as s:
        row = await s.get(ServerUserData, rows["vm"].server_id)
    assert row is not None and base64.b64decode(row.data).decode() == SCRIPT
