"""`POST /validate` as Heat's validate_template (strict_validate off): a parameter needs no
value to validate the template, while a stack create still needs one; a value that is
given is still checked against its constraints."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Api
from tests.api.orchestration.test_stacks import assert_heat_fault

TEMPLATE: dict[str, Any] = {
    "heat_template_version": "2016-04-08",
    "parameters": {
        "test_val": {"type": "string"},
        "flavor": {"type": "string", "constraints": [{"custom_constraint": "nova.flavor"}]},
        "size": {"type": "number", "constraints": [{"range": {"min": 1, "max": 3}}]},
    },
    "resources": {
        "test": {
            "type": "OS::Heat::TestResource",
            "properties": {"value": {"get_param": "test_val"}},
        },
        "vm": {
            "type": "OS::Nova::Server",
            "properties": {"flavor": {"get_param": "flavor"}, "image": "cirros"},
        },
    },
    "outputs": {"output_value": {"value": {"get_attr": ["test", "output"]}}},
}


async def test_a_template_validates_without_parameter_values(api: Api) -> None:
    base = f"/orchestration/v1/{api.admin.project_id}"
    r = await api.client.post(base + "/validate", json={"template": TEMPLATE})
    assert r.status_code == 200, r.text
    assert set(r.json()["Parameters"]) == {"test_val", "flavor", "size"}
    # What is given is still checked: a value out of its range, a flavor that is not there.
    bad = {"template": TEMPLATE, "parameters": {"size": 7}}
    assert_heat_fault(await api.client.post(base + "/validate", json=bad), 400)
    bad = {"template": TEMPLATE, "parameters": {"flavor": "m1.nope"}}
    assert_heat_fault(await api.client.post(base + "/validate", json=bad), 400)
    # The structure is still checked: an unknown type, a reference to no parameter.
    broken = {**TEMPLATE, "resources": {"x": {"type": "OS::Nope::Thing"}}}
    assert_heat_fault(await api.client.post(base + "/validate", json={"template": broken}), 400)
    dangling = {
        **TEMPLATE,
        "resources": {
            "x": {"type": "OS::Heat::Value", "properties": {"value": {"get_param": "no"}}}
        },
    }
    assert_heat_fault(await api.client.post(base + "/validate", json={"template": dangling}), 400)


async def test_a_stack_still_needs_its_parameter_values(api: Api) -> None:
    base = f"/orchestration/v1/{api.admin.project_id}/stacks"
    body = {"stack_name": "unvalued", "template": TEMPLATE}
    r = await api.client.post(base, json=body)
    assert_heat_fault(r, 400)
    assert "need a value" in r.text
    assert (await api.client.get(base)).json()["stacks"] == []
