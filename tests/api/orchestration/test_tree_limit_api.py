"""Heat's max_resources_per_stack at `stack update` over the API: a PUT or PATCH whose
whole tree would pass 1000 resources answers Heat's 400 RequestLimitExceeded and changes
nothing."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Api

from .test_stacks import assert_heat_fault

MESSAGE = "Request limit exceeded: Maximum resources per stack exceeded."

NESTED = {
    "heat_template_version": "2018-08-31",
    "resources": {"a": {"type": "OS::Heat::None"}, "b": {"type": "OS::Heat::None"}},
}
TEMPLATE: dict[str, Any] = {
    "heat_template_version": "2018-08-31",
    "parameters": {"size": {"type": "number", "default": 2}},
    "resources": {
        "inner": {"type": "OS::Heat::Stack", "properties": {"template": NESTED}},
        "group": {
            "type": "OS::Heat::ResourceGroup",
            "properties": {
                "count": {"get_param": "size"},
                "resource_def": {"type": "OS::Heat::None"},
            },
        },
    },
}


async def test_an_update_past_the_whole_trees_limit_is_refused_with_heats_fault(api: Api) -> None:
    pid = api.admin.project_id
    body = {"stack_name": "big", "template": TEMPLATE, "parameters": {}, "files": {}}
    r = await api.client.post(f"/orchestration/v1/{pid}/stacks", json=body)
    assert r.status_code == 201, r.text
    sid = r.json()["stack"]["id"]
    for _ in range(20):
        await api.plane.worker.orchestration.run_once()
    url = f"/orchestration/v1/{pid}/stacks/big/{sid}"
    before = (await api.client.get(url)).json()["stack"]
    assert before["stack_status"] == "CREATE_COMPLETE", before

    # inner + its 2 + group + 996 members = 1000: allowed (checked, then left alone).
    # 997 members: 1001 over the tree, though the root template has 2 resources.
    patch = {"parameters": {"size": 997}, "template": None, "files": {}, "environment": {}}
    r = await api.client.patch(url, json=patch)
    assert assert_heat_fault(r, 400) == MESSAGE
    assert r.json()["error"]["type"] == "RequestLimitExceeded"
    put = {"template": TEMPLATE, "parameters": {"size": 997}, "files": {}, "environment": {}}
    r = await api.client.put(url, json=put)
    assert assert_heat_fault(r, 400) == MESSAGE

    after = (await api.client.get(url)).json()["stack"]
    assert after["stack_status"] == "CREATE_COMPLETE"
    assert after["parameters"]["size"] == before["parameters"]["size"]
    rows = (await api.client.get(url + "/resources?nested_depth=2")).json()["resources"]
    assert len(rows) <= 6  # nothing added

    # At the limit it is accepted.
    patch["parameters"] = {"size": 996}
    r = await api.client.patch(url, json=patch)
    assert r.status_code == 202, r.text
