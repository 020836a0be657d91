"""`POST /validate` checks the template a group's members are made from: a type canopy
lacks there is a 400 naming it before anything is made (heat-templates'
hot/autohealing/autohealing_group.yaml was accepted, then its members failed)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.api.conftest import Api
from tests.api.orchestration.test_stacks import assert_heat_fault

MEMBER = {
    "heat_template_version": "2016-10-14",
    "resources": {
        "value": {"type": "OS::Heat::Value", "properties": {"value": 1}},
        "queue": {"type": "OS::Zaqar::Queue"},
    },
}


def _group(kind: str) -> dict[str, Any]:
    props: dict[str, Any] = (
        {"count": 2, "resource_def": {"type": "member.yaml"}}
        if kind == "OS::Heat::ResourceGroup"
        else {"min_size": 1, "max_size": 3, "resource": {"type": "member.yaml"}}
    )
    return {
        "heat_template_version": "2016-10-14",
        "resources": {"group": {"type": kind, "properties": props}},
    }


@pytest.mark.parametrize("kind", ["OS::Heat::ResourceGroup", "OS::Heat::AutoScalingGroup"])
async def test_a_member_template_with_a_type_canopy_lacks_is_refused(api: Api, kind: str) -> None:
    base = f"/orchestration/v1/{api.admin.project_id}"
    body = {"template": _group(kind), "files": {"member.yaml": json.dumps(MEMBER)}}
    r = await api.client.post(base + "/validate", json=body)
    message = assert_heat_fault(r, 400)
    assert "the member template: resources.queue" in message
    assert "OS::Zaqar::Queue" in message
    r = await api.client.post(base + "/stacks", json={"stack_name": "g", **body})
    assert "OS::Zaqar::Queue" in assert_heat_fault(r, 400)
    # Mapped to a type canopy has, through the environment, the same template validates.
    mapped = {**body, "environment": {"resource_registry": {"OS::Zaqar::Queue": "OS::Heat::None"}}}
    r = await api.client.post(base + "/validate", json=mapped)
    assert r.status_code == 200, r.text
