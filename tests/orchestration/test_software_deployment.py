"""Software deployments through the engine: a structured deployment substitutes its
inputs, an error_output fails it, an update derives a new config for the UPDATE action,
a signal when nothing waits changes nothing, and what canopy cannot do is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from canopy.domain.errors import InvalidRequest
from canopy.orchestration.resources.software_deployment import server_deployments
from tests.controllers.harness import Plane, make_plane

from .helpers import CLOUDS, create, hot, resources, send_signal, server, settle, signals
from .test_groups import update


def structured(values: dict[str, Any], validate: str = "LAX") -> dict[str, Any]:
    return hot(
        {
            "config": {
                "type": "OS::Heat::StructuredConfig",
                "properties": {
                    "group": "os-apply-config",
                    "config": {
                        "motd": {"get_input": "motd"},
                        "list": [{"get_input": "n"}, "kept", {"get_input": 7}],
                        "two": {"get_input": "motd", "other": 1},
                    },
                },
            },
            "vm": server(user_data_format="SOFTWARE_CONFIG"),
            "deploy": {
                "type": "OS::Heat::StructuredDeployment",
                "properties": {
                    "config": {"get_resource": "config"},
                    "server": {"get_resource": "vm"},
                    "input_values": values,
                    "input_values_validate": validate,
                    "signal_transport": "NO_SIGNAL",
                },
            },
        }
    )


async def _deployed(p: Plane, sid: str) -> list[Any]:
    rows = await resources(p, sid)
    async with p.db.read() as s:
        return await server_deployments(s, p.ctx.project_id, rows["vm"].physical_resource_id)


async def test_a_structured_deployment_substitutes_its_inputs_as_heat_does(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "structured", structured({"motd": "hi", "n": 2}))
        done = await settle(p, sid)
        assert done.status == "COMPLETE", done.status_reason
        [deployed] = await _deployed(p, sid)
        assert deployed["group"] == "os-apply-config"
        # One-key maps of get_input with a string are substituted; the rest stays.
        assert deployed["config"] == {
            "motd": "hi",
            "list": [2, "kept", {"get_input": 7}],
            "two": {"get_input": "motd", "other": 1},
        }
        # The config resource keeps its map, get_input and all (Heat substitutes only in
        # the deployment).
        rows = await resources(p, sid)
        assert rows["config"].attributes["config"]["motd"] == {"get_input": "motd"}
    finally:
        await p.close()


async def test_strict_input_validation_fails_a_missing_input(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "strict", structured({"motd": "hi"}, validate="STRICT"))
        done = await settle(p, sid)
        assert done.status == "FAILED"
        assert "resources.deploy: The Parameter (n) was not provided." in done.status_reason
    finally:
        await p.close()


def scripted(values: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return hot(
        {
            "config": {
                "type": "OS::Heat::SoftwareConfig",
                "properties": {
                    "config": "#!/bin/sh\n",
                    "outputs": [{"name": "broken", "error_output": True}, {"name": "ok"}],
                },
            },
            "vm": server(user_data_format="SOFTWARE_CONFIG"),
            "deploy": {
                "type": "OS::Heat::SoftwareDeployment",
                "properties": {
                    "config": {"get_resource": "config"},
                    "server": {"get_resource": "vm"},
                    "input_values": values,
                    **extra,
                },
            },
        },
        outputs={"ok": {"value": {"get_attr": ["deploy", "ok"]}}},
    )


async def _waiting(p: Plane, sid: str, action: str = "CREATE") -> None:
    async def there() -> bool:
        rows = await resources(p, sid)
        d = rows.get("deploy")
        return d is not None and (d.action, d.status) == (action, "IN_PROGRESS")

    await p.run_until(there)


async def test_an_error_output_fails_the_deployment_with_its_value(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "erroring", scripted({}))
        await _waiting(p, sid)
        body = {"deploy_status_code": 0, "broken": "the disk is full", "ok": "yes"}
        await send_signal(p, sid, "deploy", body)
        done = await settle(p, sid)
        assert done.status == "FAILED"
        assert done.status_reason.endswith(
            "Deployment to server failed: broken : the disk is full"
        ), done.status_reason
        assert (await signals(p, sid))[0].outcome.endswith("failed")
    finally:
        await p.close()


async def test_an_update_derives_a_config_for_the_update_action(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "updated", scripted({"v": 1}))
        await _waiting(p, sid)
        [first] = await _deployed(p, sid)
        await send_signal(p, sid, "deploy", {"deploy_status_code": 0, "ok": "one"})
        done = await settle(p, sid)
        assert done.status == "COMPLETE", done.status_reason
        # A signal when nothing waits is recorded and ignored.
        await send_signal(p, sid, "deploy", {"deploy_status_code": 1})
        for _ in range(3):
            await p.step()
        assert "ignored" in (await signals(p, sid))[-1].outcome
        assert (await resources(p, sid))["deploy"].attributes["ok"] == "one"

        await update(p, sid, scripted({"v": 2}))
        await _waiting(p, sid, "UPDATE")
        [second] = await _deployed(p, sid)
        assert second["id"] != first["id"]
        inputs = {i["name"]: i["value"] for i in second["inputs"]}
        assert (inputs["v"], inputs["deploy_action"]) == (2, "UPDATE")
        # The same URL signals the update (Heat keeps the deployment's signal URL).
        assert (
            inputs["deploy_signal_id"]
            == {i["name"]: i["value"] for i in first["inputs"]}["deploy_signal_id"]
        )
        await send_signal(p, sid, "deploy", {"deploy_status_code": 0, "ok": "two"})
        done = await settle(p, sid)
        assert (done.action, done.status) == ("UPDATE", "COMPLETE"), done.status_reason
        assert (await resources(p, sid))["deploy"].attributes["ok"] == "two"
    finally:
        await p.close()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"signal_transport": "HEAT_SIGNAL"}, "signal_transport HEAT_SIGNAL is not supported"),
        ({"actions": ["CREATE", "DELETE"]}, "actions: DELETE with signal_transport CFN_SIGNAL"),
        ({"actions": ["REBOOT"]}, "actions: 'REBOOT' is not one of the allowed values"),
    ],
)
async def test_what_canopy_cannot_do_is_refused_at_create(
    extra: dict[str, Any], message: str, db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        with pytest.raises(InvalidRequest, match=message):
            await create(p, "refused", scripted({}, **extra))
    finally:
        await p.close()


async def test_a_server_that_is_not_software_config_is_refused_as_heat_does(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        body = scripted({})
        body["resources"]["vm"]["properties"]["user_data_format"] = "RAW"
        with pytest.raises(InvalidRequest, match="Resource vm's property user_data_format should"):
            await create(p, "raw", body)
        del body["resources"]["vm"]["properties"]["user_data_format"]  # HEAT_CFNTOOLS
        with pytest.raises(InvalidRequest, match="should be set to SOFTWARE_CONFIG"):
            await create(p, "cfntools", body)
    finally:
        await p.close()


def component(configs: list[dict[str, Any]]) -> dict[str, Any]:
    return hot(
        {
            "component": {
                "type": "OS::Heat::SoftwareComponent",
                "properties": {"configs": configs},
            },
            "vm": server(user_data_format="SOFTWARE_CONFIG"),
            "deploy": {
                "type": "OS::Heat::SoftwareDeployment",
                "properties": {
                    "config": {"get_resource": "component"},
                    "server": {"get_resource": "vm"},
                    "signal_transport": "NO_SIGNAL",
                    "actions": ["UPDATE"],  # a component's own actions decide (Heat's rule)
                },
            },
        }
    )


async def test_a_component_deploys_for_the_actions_its_configs_name(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        configs = [
            {"actions": ["CREATE"], "config": "make", "tool": "script"},
            {"actions": ["SUSPEND"], "config": "pause", "tool": "script"},
        ]
        sid = await create(p, "component", component(configs))
        done = await settle(p, sid)
        assert done.status == "COMPLETE", done.status_reason
        [deployed] = await _deployed(p, sid)
        assert deployed["group"] == "component"
        assert deployed["config"] == {"configs": configs}
        inputs = {i["name"]: i["value"] for i in deployed["inputs"]}
        assert inputs["deploy_action"] == "CREATE"

        only_later = [{"actions": ["DELETE"], "config": "clean", "tool": "script"}]
        sid = await create(p, "later", component(only_later))
        done = await settle(p, sid)
        assert done.status == "COMPLETE", done.status_reason
        assert await _deployed(p, sid) == []
    finally:
        await p.close()


async def test_a_component_with_two_configs_for_one_action_is_refused(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        twice = [
            {"config": "a", "tool": "script"},  # CREATE and UPDATE by default
            {"actions": ["UPDATE"], "config": "b", "tool": "script"},
        ]
        with pytest.raises(InvalidRequest, match="more than one configuration for the same"):
            await create(p, "twice", component(twice))
    finally:
        await p.close()
