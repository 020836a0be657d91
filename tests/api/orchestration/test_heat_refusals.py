"""What Heat refuses, canopy refuses, in Heat's error body, on both databases: wrong-typed
function arguments at create (never a 500), a map as a server's user_data, resource
metadata or a CFN mapping that is not a map, a Value that is not of its type, a boolean
query parameter that is neither true nor false, and a preview with no stack name."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Api
from tests.api.orchestration.test_stacks import assert_heat_fault
from tests.orchestration.helpers import settle

WRONG_MAP_REPLACE = {"map_replace": [{"a": 1}, {"keys": {"a": [1]}}]}


def _hot(resources: dict[str, Any], **sections: Any) -> dict[str, Any]:
    return {"heat_template_version": "2018-08-31", "resources": resources, **sections}


def _value(value: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "OS::Heat::Value", "properties": {"value": value, **extra}}


def _server(**props: Any) -> dict[str, Any]:
    return {
        "type": "OS::Nova::Server",
        "properties": {"flavor": "m1.small", "image": "cirros", **props},
    }


REFUSED: dict[str, tuple[dict[str, Any], str]] = {
    "map_replace as a property": (
        _hot({"v": _value(WRONG_MAP_REPLACE)}),
        "map_replace: the replacement of key 'a' must be a string",
    ),
    "a map as user_data": (
        _hot({"vm": _server(user_data={"a": 1})}),
        'resources.vm.properties.user_data: Value {"a": 1} is not a valid string',
    ),
    "a list as user_data": (
        _hot({"vm": _server(user_data=["a"])}),
        "is not a valid string",
    ),
    "metadata that is not a map": (
        _hot({"v": {**_value(1), "metadata": 5}}),
        "resources.v.metadata: must be a map",
    ),
    "a CFN mapping that is not a map": (
        {"AWSTemplateFormatVersion": "2010-09-09", "Mappings": {"m": 5}, "Resources": {}},
        "Mappings.m: a mapping must be a map of keys to maps",
    ),
    "a CFN mapping entry that is not a map": (
        {"AWSTemplateFormatVersion": "2010-09-09", "Mappings": {"m": {"k": 5}}, "Resources": {}},
        "Mappings.m.k: must be a map",
    ),
    "a number Value that is not a number": (
        _hot({"v": _value("x", type="number")}),
        'resources.v.properties: value: Value "x" is not a valid number',
    ),
    "a boolean Value that is not a boolean": (
        _hot({"v": _value("maybe", type="boolean")}),
        "is not a valid boolean",
    ),
    "a json Value that is not a map": (
        _hot({"v": _value(5, type="json")}),
        "is not a valid json",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
async def test_refused_at_create_preview_and_validate(api: Api, case: str) -> None:
    template, words = REFUSED[case]
    base = f"/orchestration/v1/{api.admin.project_id}"
    for route, body in (
        ("/stacks", {"stack_name": "s", "template": template}),
        ("/stacks/preview", {"stack_name": "s", "template": template}),
        ("/validate", {"template": template}),
    ):
        r = await api.client.post(base + route, json=body)
        assert words in assert_heat_fault(r, 400), (route, r.text)


async def test_a_wrong_map_replace_in_an_output_is_that_outputs_error(api: Api) -> None:
    """As in Heat, an output is resolved when shown: its error is its `output_error`."""
    base = f"/orchestration/v1/{api.admin.project_id}"
    t = _hot({}, outputs={"o": {"value": WRONG_MAP_REPLACE}})
    r = await api.client.post(base + "/stacks", json={"stack_name": "out", "template": t})
    assert r.status_code == 201, r.text
    sid = r.json()["stack"]["id"]
    await settle(api.plane, sid, steps=20)
    r = await api.client.get(f"{base}/stacks/out/{sid}/outputs/o")
    assert r.status_code == 200, r.text
    output = r.json()["output"]
    assert output["output_value"] is None
    assert "map_replace: the replacement of key 'a' must be a string" in output["output_error"]
    r = await api.client.get(f"{base}/stacks/out/{sid}")
    assert r.status_code == 200, r.text


async def test_values_of_their_type_pass(api: Api) -> None:
    t = _hot({
        "n": _value("1.5", type="number"),
        "s": _value(5, type="string"),
        "b": _value("TRUE", type="boolean"),
        "l": _value("a,b", type="comma_delimited_list"),
        "j": _value({"a": [1]}, type="json"),
        "vm": _server(user_data=12),
    })  # fmt: skip
    base = f"/orchestration/v1/{api.admin.project_id}"
    r = await api.client.post(base + "/stacks", json={"stack_name": "ok", "template": t})
    assert r.status_code == 201, r.text


async def test_a_value_of_the_wrong_type_at_run_time_fails_its_resource(api: Api) -> None:
    t = _hot({
        "a": _value("x"),
        "v": _value({"get_attr": ["a", "value"]}, type="number"),
    })  # fmt: skip
    base = f"/orchestration/v1/{api.admin.project_id}"
    r = await api.client.post(
        base + "/stacks", json={"stack_name": "late", "template": t, "disable_rollback": True}
    )
    assert r.status_code == 201, r.text
    done = await settle(api.plane, r.json()["stack"]["id"], steps=20)
    assert (done.action, done.status) == ("CREATE", "FAILED")
    assert 'resources.v: Property error: properties: value: Value "x" is not a valid number' in (
        done.status_reason
    )


@pytest.mark.parametrize("flag", ["show_deleted", "show_nested", "global_tenant", "show_hidden"])
async def test_a_boolean_query_parameter_is_true_or_false(api: Api, flag: str) -> None:
    base = f"/orchestration/v1/{api.admin.project_id}/stacks"
    for bad in ("maybe", "1", "yes", ""):
        message = assert_heat_fault(await api.client.get(base, params={flag: bad}), 400)
        assert message == (
            f'Unrecognized value "{bad}" for "{flag}", acceptable values are: true, false.'
        )
    for good in ("true", "False", "TRUE"):
        r = await api.client.get(base, params={flag: good})
        assert r.status_code == 200, r.text


async def test_a_preview_needs_a_stack_name(api: Api) -> None:
    base = f"/orchestration/v1/{api.admin.project_id}"
    r = await api.client.post(base + "/stacks/preview", json={"template": _hot({})})
    assert assert_heat_fault(r, 400) == "No stack name specified"
