"""Heat's resource mark unhealthy (PATCH .../resources/{name}) and the template a resource
type mirrors (GET /resource_types/{type}/template), as python-heatclient and Heat's own API
tests use them."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Api
from tests.api.orchestration.test_nested_api import _settle
from tests.api.orchestration.test_stacks import assert_heat_fault

TEMPLATE: dict[str, Any] = {
    "heat_template_version": "2016-04-08",
    "resources": {"test": {"type": "OS::Heat::TestResource", "properties": {"value": "one"}}},
}


async def _stack(api: Api, name: str) -> str:
    base = f"/orchestration/v1/{api.admin.project_id}/stacks"
    r = await api.client.post(base, json={"stack_name": name, "template": TEMPLATE})
    assert r.status_code == 201, r.text
    url = f"{base}/{name}/{r.json()['stack']['id']}"
    assert (await _settle(api, url))["stack_status"] == "CREATE_COMPLETE"
    return url


async def _resource(api: Api, url: str) -> dict[str, Any]:
    body: dict[str, Any] = (await api.client.get(url + "/resources/test")).json()["resource"]
    return body


async def test_a_resource_marked_unhealthy_is_replaced_by_the_next_update(api: Api) -> None:
    url = await _stack(api, "marked")
    first = await _resource(api, url)
    r = await api.client.patch(
        url + "/resources/test",
        json={"mark_unhealthy": True, "resource_status_reason": "resource deleted"},
    )
    assert r.status_code == 200, r.text
    shown = await _resource(api, url)
    assert (shown["resource_status"], shown["resource_status_reason"]) == (
        "CHECK_FAILED",
        "resource deleted",
    )
    events = (await api.client.get(url + "/events?resource_name=test")).json()["events"]
    assert events[-1]["resource_status"] == "CHECK_FAILED"

    # The same template again: the unhealthy resource is replaced, the stack comes back.
    r = await api.client.put(url, json={"template": TEMPLATE})
    assert r.status_code == 202, r.text
    assert (await _settle(api, url))["stack_status"] == "UPDATE_COMPLETE"
    again = await _resource(api, url)
    assert again["resource_status"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE")
    assert again["physical_resource_id"] != first["physical_resource_id"]


async def test_marked_healthy_again_only_from_check_failed(api: Api) -> None:
    url = await _stack(api, "healed")
    r = await api.client.patch(url + "/resources/test", json={"mark_unhealthy": "false"})
    assert r.status_code == 200, r.text
    assert (await _resource(api, url))["resource_status"] == "CREATE_COMPLETE"  # unchanged
    await api.client.patch(url + "/resources/test", json={"mark_unhealthy": "true"})
    shown = await _resource(api, url)
    assert shown["resource_status"] == "CHECK_FAILED"
    assert shown["resource_status_reason"] == "state changed by resource_mark_unhealthy api"
    await api.client.patch(url + "/resources/test", json={"mark_unhealthy": False})
    assert (await _resource(api, url))["resource_status"] == "CHECK_COMPLETE"
    # By physical id too.
    physical = (await _resource(api, url))["physical_resource_id"]
    r = await api.client.patch(url + f"/resources/{physical}", json={"mark_unhealthy": True})
    assert r.status_code == 200, r.text
    assert (await _resource(api, url))["resource_status"] == "CHECK_FAILED"


async def test_bad_marks_are_heat_faults_and_change_nothing(api: Api) -> None:
    url = await _stack(api, "refused")
    for body in (
        {},
        {"mark_unhealthy": "maybe"},
        {"mark_unhealthy": 1},
        {"mark_unhealthy": True, "other": 1},
        {"mark_unhealthy": True, "resource_status_reason": 5},
        {"mark_unhealthy": True, "resource_status_reason": "x" * 1025},
        ["mark_unhealthy"],
    ):
        assert_heat_fault(await api.client.patch(url + "/resources/test", json=body), 400)
    missing = await api.client.patch(url + "/resources/nope", json={"mark_unhealthy": True})
    assert_heat_fault(missing, 404)
    assert (await _resource(api, url))["resource_status"] == "CREATE_COMPLETE"


async def test_a_resource_type_as_a_template_of_parameters_and_outputs(api: Api) -> None:
    base = f"/orchestration/v1/{api.admin.project_id}/resource_types"
    hot = await api.client.get(base + "/OS::Heat::RandomString/template?template_type=hot")
    assert hot.status_code == 200, hot.text
    t = hot.json()
    assert t["heat_template_version"] == "2016-10-14"
    assert t["resources"]["RandomString"]["type"] == "OS::Heat::RandomString"
    assert t["parameters"]["length"]["type"] == "number"
    assert t["resources"]["RandomString"]["properties"]["length"] == {"get_param": "length"}
    assert t["outputs"]["value"]["value"] == {"get_attr": ["RandomString", "value"]}
    # What it gives back is a template canopy takes.
    r = await api.client.post(
        f"/orchestration/v1/{api.admin.project_id}/validate", json={"template": t}
    )
    assert r.status_code == 200, r.text
    cfn = (await api.client.get(base + "/OS::Heat::RandomString/template")).json()
    assert cfn["HeatTemplateFormatVersion"] == "2012-12-12"
    assert cfn["Parameters"]["length"]["Type"] == "Number"
    assert cfn["Outputs"]["value"]["Value"] == {"Fn::GetAtt": ["RandomString", "value"]}
    bad = await api.client.get(base + "/OS::Heat::RandomString/template?template_type=xml")
    assert_heat_fault(bad, 400)
    assert_heat_fault(await api.client.get(base + "/OS::Nope/template"), 404)


async def test_every_resource_type_mirrors_as_a_template_canopy_validates(api: Api) -> None:
    base = f"/orchestration/v1/{api.admin.project_id}"
    types = (await api.client.get(base + "/resource_types")).json()["resource_types"]
    refused = {}
    for name in types:
        for kind in ("hot", "cfn"):
            r = await api.client.get(f"{base}/resource_types/{name}/template?template_type={kind}")
            assert r.status_code == 200, (name, kind, r.text)
        v = await api.client.post(base + "/validate", json={"template": r.json()})
        if v.status_code != 200:
            refused[name] = v.json()["error"]["message"]
    assert not refused, refused
