"""Nested stacks through the Heat API: resources with nested_depth and parent_resource,
the nested link, stack list hiding nested stacks, and 400s for bad nested templates."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.api.conftest import Api
from tests.api.orchestration.test_stacks import assert_heat_fault

INNER = """\
heat_template_version: 2016-10-14
resources:
  leaf:
    type: OS::Heat::Value
    properties: {value: leaf}
  deeper:
    type: OS::Heat::Stack
    properties:
      template:
        heat_template_version: 2016-10-14
        resources:
          bottom: {type: OS::Heat::None}
outputs:
  said: {value: {get_attr: [leaf, value]}}
"""
URL = "file:///t/inner.yaml"
TEMPLATE: dict[str, Any] = {
    "heat_template_version": "2018-08-31",
    "resources": {"top": {"type": URL}, "plain": {"type": "OS::Heat::None"}},
    "outputs": {"said": {"value": {"get_attr": ["top", "said"]}}},
}


async def _settle(api: Api, url: str) -> dict[str, Any]:
    for _ in range(20):
        await api.plane.worker.orchestration.run_once()
        r = await api.client.get(url)
        body: dict[str, Any] = r.json()["stack"]
        if not body["stack_status"].endswith("IN_PROGRESS"):
            return body
    raise AssertionError("the stack did not settle")


async def test_nested_resources_list_with_their_parent_resource(api: Api) -> None:
    pid = api.admin.project_id
    base = f"/orchestration/v1/{pid}/stacks"
    body = {"stack_name": "outer", "template": TEMPLATE, "files": {URL: INNER}}
    r = await api.client.post(base, json=body)
    assert r.status_code == 201, r.text
    sid = r.json()["stack"]["id"]
    shown = await _settle(api, f"{base}/outer/{sid}")
    assert shown["stack_status"] == "CREATE_COMPLETE", shown["stack_status_reason"]
    assert shown["outputs"][0]["output_value"] == "leaf"

    url = f"{base}/outer/{sid}/resources"
    flat = (await api.client.get(url)).json()["resources"]
    assert sorted(x["resource_name"] for x in flat) == ["plain", "top"]
    top = next(x for x in flat if x["resource_name"] == "top")
    assert top["resource_type"] == URL
    [nested_link] = [link for link in top["links"] if link["rel"] == "nested"]
    assert nested_link["href"].endswith("/" + top["physical_resource_id"])

    one = (await api.client.get(url + "?nested_depth=1")).json()["resources"]
    got = {(x["resource_name"], x.get("parent_resource")) for x in one}
    assert got == {("plain", None), ("top", None), ("leaf", "top"), ("deeper", "top")}
    leaf = next(x for x in one if x["resource_name"] == "leaf")
    stack_link = next(link for link in leaf["links"] if link["rel"] == "stack")
    assert stack_link["href"].endswith("/" + top["physical_resource_id"])

    two = (await api.client.get(url + "?nested_depth=2")).json()["resources"]
    assert ("bottom", "deeper") in {(x["resource_name"], x.get("parent_resource")) for x in two}
    assert_heat_fault(await api.client.get(url + "?nested_depth=x"), 400)

    # The list shows the top-level stack; show_nested adds the children with their parent.
    names = [x["stack_name"] for x in (await api.client.get(base)).json()["stacks"]]
    assert names == ["outer"]
    every = (await api.client.get(base + "?show_nested=true")).json()["stacks"]
    assert len(every) == 3
    child = next(x for x in every if x["id"] == top["physical_resource_id"])
    assert child["parent"] == sid

    r = await api.client.delete(f"{base}/outer/{sid}")
    assert r.status_code == 204
    for _ in range(20):
        await api.plane.worker.orchestration.run_once()
    left = (await api.client.get(base + "?show_nested=true")).json()["stacks"]
    assert left == []


async def test_stack_actions_reach_the_nested_stacks(api: Api) -> None:
    pid = api.admin.project_id
    base = f"/orchestration/v1/{pid}/stacks"
    body = {"stack_name": "acted", "template": TEMPLATE, "files": {URL: INNER}}
    r = await api.client.post(base, json=body)
    assert r.status_code == 201, r.text
    url = f"{base}/acted/{r.json()['stack']['id']}"
    assert (await _settle(api, url))["stack_status"] == "CREATE_COMPLETE"
    for act, state in (("suspend", "SUSPEND"), ("resume", "RESUME"), ("check", "CHECK")):
        r = await api.client.post(url + "/actions", json={act: None})
        assert r.status_code == 200, r.text
        shown = await _settle(api, url)
        assert shown["stack_status"] == f"{state}_COMPLETE", shown["stack_status_reason"]
        every = (await api.client.get(base + "?show_nested=true")).json()["stacks"]
        assert len(every) == 3
        assert {x["stack_status"] for x in every} == {f"{state}_COMPLETE"}
        deep = (await api.client.get(url + "/resources?nested_depth=2")).json()["resources"]
        assert {x["resource_name"] for x in deep} == {"top", "plain", "leaf", "deeper", "bottom"}
        assert {x["resource_status"] for x in deep} == {f"{state}_COMPLETE"}


async def test_bad_nested_templates_are_heat_faults(api: Api) -> None:
    pid = api.admin.project_id
    base = f"/orchestration/v1/{pid}/stacks"
    loop = {
        "heat_template_version": "2018-08-31",
        "resources": {"me": {"type": "file:///t/loop.yaml"}},
    }
    loop_text = (
        'heat_template_version: 2018-08-31\nresources:\n  me: {type: "file:///t/loop.yaml"}\n'
    )
    cases: list[tuple[dict[str, Any], str]] = [
        ({"template": loop, "files": {"file:///t/loop.yaml": loop_text}}, "Recursion depth"),
        ({"template": TEMPLATE, "files": {}}, "not in the stack's files"),
        ({"template": TEMPLATE, "files": {URL: "{{{"}}, "YAML"),
        (
            {
                "template": TEMPLATE,
                "files": {URL: INNER},
                "environment": {"resource_registry": {"resources": {"x": {"hooks": "a"}}}},
            },
            "not supported",
        ),
    ]
    for extra, words in cases:
        r = await api.client.post(base, json={"stack_name": "bad", **extra})
        message = assert_heat_fault(r, 400)
        assert words in message, message
    assert (await api.client.get(base + "?show_nested=true")).json() == {"stacks": []}


async def test_bad_properties_of_the_new_types_are_heat_faults(api: Api) -> None:
    pid = api.admin.project_id
    base = f"/orchestration/v1/{pid}/stacks"

    def one(rtype: str, props: dict[str, Any]) -> dict[str, Any]:
        return {
            "heat_template_version": "2018-08-31",
            "resources": {"r": {"type": rtype, "properties": props}},
        }

    cases = [
        (one("OS::Nova::KeyPair", {"name": "no/slash"}), "does not match"),
        (one("OS::Nova::KeyPair", {"name": "k", "public_key": "junk"}), "Keypair data"),
        (one("OS::Nova::ServerGroup", {"policies": ["a", "b"]}), "exactly one"),
        (one("AWS::EC2::Instance", {"ImageId": "cirros"}), "InstanceType"),
        (one("OS::Heat::MultipartMime", {"parts": [{"type": "text"}]}), "config"),
        (one("OS::Heat::CloudConfig", {"cloud_config": [1]}), "map"),
        (one("OS::Heat::Stack", {"template": "a: [", "parameters": {}}), "YAML"),
    ]
    for template, words in cases:
        r = await api.client.post(base, json={"stack_name": "bad", "template": template})
        message = assert_heat_fault(r, 400)
        assert words in message, (template, message)
    assert (await api.client.get(base)).json() == {"stacks": []}


def _fan(k: int, known: bool) -> str:
    """A template file of `k` resources of its own type (the file `fan.yaml`): the
    parameter each is given is known now, or only once a sibling exists."""
    given: Any = "x" if known else {"get_attr": ["v", "value"]}
    resources: dict[str, Any] = {"v": {"type": "OS::Heat::Value", "properties": {"value": "x"}}}
    for i in range(k):
        resources[f"c{i}"] = {"type": "fan.yaml", "properties": {"p": given}}
    return json.dumps(
        {
            "heat_template_version": "2018-08-31",
            "parameters": {"p": {"type": "string", "default": ""}},
            "resources": resources,
        }
    )


@pytest.mark.parametrize("known", [True, False])
@pytest.mark.parametrize("route", ["stacks", "validate"])
async def test_checking_a_file_fanning_out_to_itself_is_bounded(
    api: Api, monkeypatch: pytest.MonkeyPatch, known: bool, route: str
) -> None:
    """A file of k resources of its own type nests k^5 stacks deep and wide (the adopt
    check's blow-up): the checks a create or a validate makes of the nested templates read
    at most as many of them as a stack may have resources (nesting_checks), whether the
    parameters are known now (followed depth first, refused past MAX_DEPTH) or not
    (counted, not followed)."""
    from canopy.orchestration import nesting_checks

    loads: list[str] = []
    real = nesting_checks.load_template

    def counted(raw: Any, where: str) -> dict[str, Any]:
        loads.append(where)
        return real(raw, where)

    monkeypatch.setattr(nesting_checks, "load_template", counted)
    pid = api.admin.project_id
    top = {"heat_template_version": "2018-08-31", "resources": {"r": {"type": "fan.yaml"}}}
    body = {"stack_name": "fan", "template": top, "files": {"fan.yaml": _fan(8, known)}}
    r = await api.client.post(f"/orchestration/v1/{pid}/{route}", json=body)
    assert r.status_code in (200, 201, 400), r.text
    assert len(loads) <= nesting_checks.MAX_RESOURCES, f"{len(loads)} nested templates read"
    if known:  # followed depth first: refused when the first path passes MAX_DEPTH
        assert r.status_code == 400, r.text
        assert "Recursion depth exceeds" in r.json()["error"]["message"], r.text


async def test_events_with_nested_depth_come_from_the_nested_stacks_in_one_order(
    api: Api,
) -> None:
    pid = api.admin.project_id
    base = f"/orchestration/v1/{pid}/stacks"
    body = {"stack_name": "evented", "template": TEMPLATE, "files": {URL: INNER}}
    r = await api.client.post(base, json=body)
    assert r.status_code == 201, r.text
    sid = r.json()["stack"]["id"]
    url = f"{base}/evented/{sid}"
    assert (await _settle(api, url))["stack_status"] == "CREATE_COMPLETE"
    stacks = (await api.client.get(base + "?show_nested=true")).json()["stacks"]
    name_of = {x["id"]: x["stack_name"] for x in stacks}

    def stack_of(event: dict[str, Any]) -> str:
        [link] = [x["href"] for x in event["links"] if x["rel"] == "stack"]
        return name_of[link.rsplit("/", 1)[1]]

    own = (await api.client.get(url + "/events")).json()["events"]
    assert {e["resource_name"] for e in own} >= {"top", "plain", "evented"}
    assert {stack_of(e) for e in own} == {"evented"}
    assert not [x for e in own for x in e["links"] if x["rel"] == "root_stack"]

    one = (await api.client.get(url + "/events?nested_depth=1")).json()["events"]
    names = {e["resource_name"] for e in one}
    assert {"leaf", "deeper"} <= names and "bottom" not in names
    assert len({stack_of(e) for e in one}) == 2
    for e in one:
        [root] = [x["href"] for x in e["links"] if x["rel"] == "root_stack"]
        assert root.endswith(f"/evented/{sid}")
        # Each event's own link is under its own stack, where `event show` finds it.
        [me] = [x["href"] for x in e["links"] if x["rel"] == "self"]
        shown = await api.client.get(urlsplit(me).path)
        assert shown.status_code == 200, (me, shown.text)

    every = (await api.client.get(url + "/events?nested_depth=2")).json()["events"]
    assert "bottom" in {e["resource_name"] for e in every}
    assert len({stack_of(e) for e in every}) == 3
    # One order over the tree, and the marker pages across stacks.
    ids = [e["id"] for e in every]
    first = (await api.client.get(url + "/events?nested_depth=2&limit=3")).json()["events"]
    rest = await api.client.get(f"{url}/events?nested_depth=2&marker={first[-1]['id']}")
    assert [e["id"] for e in first + rest.json()["events"]] == ids
    newest = await api.client.get(url + "/events?nested_depth=2&sort_dir=desc&limit=1")
    assert [e["id"] for e in newest.json()["events"]] == ids[-1:]
    # The filters apply to the whole tree.
    leaf = await api.client.get(url + "/events?nested_depth=2&resource_name=leaf")
    assert {e["resource_name"] for e in leaf.json()["events"]} == {"leaf"}
    assert_heat_fault(await api.client.get(url + "/events?nested_depth=-1"), 400)
