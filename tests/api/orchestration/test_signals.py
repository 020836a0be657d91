"""Signals over HTTP: a scaling policy's pre-signed alarm_url with a plain client and no
Keystone token, a handle's curl_cli token in X-Auth-Token, a Keystone caller, forged
tokens refused (never a 500), and a group's members in `resource list --nested-depth`
and `resource show` with where each went and why."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx

from tests.api.conftest import Api
from tests.orchestration.helpers import settle

from .test_stacks import assert_heat_fault

SERVER = {"type": "OS::Nova::Server", "properties": {"flavor": "m1.small", "image": "cirros"}}

TEMPLATE: dict[str, Any] = {
    "heat_template_version": "2018-08-31",
    "resources": {
        "asg": {
            "type": "OS::Heat::AutoScalingGroup",
            "properties": {"min_size": 1, "max_size": 10, "resource": SERVER},
        },
        "up": {
            "type": "OS::Heat::ScalingPolicy",
            "properties": {
                "auto_scaling_group_id": {"get_resource": "asg"},
                "adjustment_type": "change_in_capacity",
                "scaling_adjustment": 2,
            },
        },
        "handle": {"type": "OS::Heat::WaitConditionHandle"},
    },
    "outputs": {
        "alarm": {"value": {"get_attr": ["up", "alarm_url"]}},
        "signal_url": {"value": {"get_attr": ["up", "signal_url"]}},
        "curl": {"value": {"get_attr": ["handle", "curl_cli"]}},
        "token": {"value": {"get_attr": ["handle", "token"]}},
        "endpoint": {"value": {"get_attr": ["handle", "endpoint"]}},
    },
}


def path_of(url: str) -> str:
    """The URL's path and query (the tests' client has its own host)."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


async def _stack(api: Api, name: str, template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    pid = api.admin.project_id
    r = await api.client.post(
        f"/orchestration/v1/{pid}/stacks", json={"stack_name": name, "template": template}
    )
    assert r.status_code == 201, r.text
    sid = r.json()["stack"]["id"]
    done = await settle(api.plane, sid)
    assert done.status == "COMPLETE", done.status_reason
    outs = {}
    r = await api.client.get(f"/orchestration/v1/{pid}/stacks/{name}/{sid}")
    for o in r.json()["stack"]["outputs"]:
        outs[o["output_key"]] = o["output_value"]
    return sid, outs


async def test_alarm_url_scales_with_a_plain_post_and_forged_tokens_are_refused(
    api: Api,
) -> None:
    pid = api.admin.project_id
    sid, outs = await _stack(api, "auto", TEMPLATE)
    members = f"/orchestration/v1/{pid}/stacks/auto/{sid}/resources?nested_depth=1"

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api.app), base_url="http://canopy.test"
    ) as anonymous:
        # Forged: a wrong token in the URL, a token of another resource, no token at all.
        alarm = path_of(outs["alarm"])
        forged = alarm.split("signal_token=")[0] + "signal_token=forged"
        assert_heat_fault(await anonymous.post(forged), 403)
        other = alarm.replace("/resources/up/", "/resources/handle/")
        assert_heat_fault(await anonymous.post(other), 403)
        assert_heat_fault(await anonymous.post(alarm.split("?")[0]), 401)
        gone = alarm.replace(sid, "00000000-0000-0000-0000-000000000000")
        assert (await anonymous.post(gone)).status_code in (403, 404)
        # Nothing was written by those.
        await api.plane.worker.orchestration.run_once()
        r = await api.client.get(members)
        assert len([m for m in r.json()["resources"] if m.get("parent_resource")]) == 1

        # The real URL, as `curl -X POST` sends it: no body, no token header.
        r = await anonymous.post(alarm)
        assert r.status_code == 200, r.text
    await api.plane.worker.orchestration.run_once()
    done = await settle(api.plane, sid)
    assert (done.action, done.status) == ("UPDATE", "COMPLETE"), done.status_reason
    r = await api.client.get(members)
    listed = r.json()["resources"]
    assert sorted(m["resource_name"] for m in listed if m.get("parent_resource") == "asg") == [
        "asg.0",
        "asg.1",
        "asg.2",
    ]
    # Without nested_depth, only the template's resources.
    r = await api.client.get(f"/orchestration/v1/{pid}/stacks/auto/{sid}/resources")
    assert sorted(m["resource_name"] for m in r.json()["resources"]) == ["asg", "handle", "up"]


async def test_a_handle_takes_its_curl_token_or_a_keystone_token(api: Api) -> None:
    pid = api.admin.project_id
    sid, outs = await _stack(api, "handled", TEMPLATE)
    endpoint = path_of(outs["endpoint"])
    assert outs["curl"].endswith(outs["endpoint"])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api.app), base_url="http://canopy.test"
    ) as anonymous:
        headers = {"X-Auth-Token": outs["token"], "Content-Type": "application/json"}
        r = await anonymous.post(endpoint, json={"status": "SUCCESS", "id": "1"}, headers=headers)
        assert r.status_code == 200, r.text
        r = await anonymous.post(endpoint, json={"status": "SUCCESS", "id": "1"}, headers=headers)
        assert r.status_code == 200  # a repeated id still answers 2xx
        # A malformed signal is refused and writes nothing; a forged header is 401.
        bad = await anonymous.post(endpoint, json={"status": "MAYBE"}, headers=headers)
        assert_heat_fault(bad, 400)
        bad = await anonymous.post(endpoint, content=b"{not json", headers=headers)
        assert_heat_fault(bad, 400)
        forged = {"X-Auth-Token": "x" * 40}
        assert_heat_fault(await anonymous.post(endpoint, json={}, headers=forged), 401)
    # A Keystone caller of the project (HEAT_SIGNAL), by the route heatclient uses.
    r = await api.client.post(endpoint, json={"id": "2", "data": "by keystone"})
    assert r.status_code == 200, r.text
    # A resource that takes no signals, and one that does not exist.
    base = f"/orchestration/v1/{pid}/stacks/handled/{sid}/resources"
    assert_heat_fault(await api.client.post(f"{base}/asg/signal", json={}), 400)
    assert_heat_fault(await api.client.post(f"{base}/nope/signal", json={}), 404)

    await api.plane.worker.orchestration.run_once()
    r = await api.client.get(f"{base}/handle/events")
    reasons = [
        e["resource_status_reason"] for e in r.json()["events"] if "SIGNAL" in e["resource_status"]
    ]
    assert len(reasons) == 3
    assert "repeated id" in reasons[1]


async def test_a_group_of_30_lists_its_members_and_shows_where_each_went(api: Api) -> None:
    pid = api.admin.project_id
    template = {
        "heat_template_version": "2018-08-31",
        "resources": {
            "web": {
                "type": "OS::Heat::ResourceGroup",
                "properties": {"count": 30, "resource_def": SERVER},
            }
        },
    }
    unlimited = {"quota_set": {"instances": -1, "cores": -1, "ram": -1}}
    r = await api.client.put(f"/compute/v2.1/os-quota-sets/{pid}", json=unlimited)
    assert r.status_code == 200, r.text
    r = await api.client.post(
        f"/orchestration/v1/{pid}/stacks", json={"stack_name": "thirty", "template": template}
    )
    sid = r.json()["stack"]["id"]
    done = await settle(api.plane, sid, steps=300)
    assert done.status == "COMPLETE", done.status_reason
    base = f"/orchestration/v1/{pid}/stacks/thirty/{sid}/resources"
    r = await api.client.get(f"{base}?nested_depth=2")
    listed = [m for m in r.json()["resources"] if m.get("parent_resource") == "web"]
    assert len(listed) == 30
    seen: dict[str, int] = {}
    for m in listed:
        r = await api.client.get(f"{base}/{m['resource_name']}")
        assert r.status_code == 200, r.text
        shown = r.json()["resource"]
        assert shown["resource_status"] == "CREATE_COMPLETE"
        canopy = shown["canopy"]
        assert canopy["reason"]
        seen[canopy["cloud"]] = seen.get(canopy["cloud"], 0) + 1
    assert seen == {"private": 6, "public": 24}
    # stack show sums it up over the tree (the members live in the group's nested stack).
    r = await api.client.get(f"/orchestration/v1/{pid}/stacks/thirty/{sid}")
    summary = r.json()["stack"]["canopy"]
    assert summary["servers"] == 30 and summary["unplaced"] == 0
    assert [(p["cloud"], p["servers"]) for p in summary["placement"]] == [
        ("private", 6),
        ("public", 24),
    ]
    assert [p["tier"] for p in summary["placement"]] == sorted(
        p["tier"] for p in summary["placement"]
    )


async def test_the_new_types_are_listed_and_described(api: Api) -> None:
    pid = api.admin.project_id
    r = await api.client.get(f"/orchestration/v1/{pid}/resource_types")
    listed = set(r.json()["resource_types"])
    new = {
        "OS::Heat::ResourceGroup",
        "OS::Heat::AutoScalingGroup",
        "OS::Heat::ScalingPolicy",
        "OS::Heat::WaitCondition",
        "OS::Heat::WaitConditionHandle",
    }
    assert new <= listed
    for name in sorted(new):
        r = await api.client.get(f"/orchestration/v1/{pid}/resource_types/{name}")
        assert r.status_code == 200, r.text
        assert r.json()["resource_type"] == name
        assert r.json()["properties"] is not None and r.json()["attributes"]
