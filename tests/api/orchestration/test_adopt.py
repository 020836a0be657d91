"""`openstack stack adopt`: a stack create with `adopt_stack_data`, as python-heatclient
sends it (the abandon file's text), taking existing servers instead of creating them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select

from canopy.store.models import Server, StackResource
from tests.api.conftest import Api

from .test_stacks import assert_heat_fault

TEMPLATE: dict[str, Any] = {
    "heat_template_version": "2018-08-31",
    "parameters": {"word": {"type": "string", "default": "hello"}},
    "resources": {
        "password": {"type": "OS::Heat::RandomString", "properties": {"length": 12}},
        "vm": {
            "type": "OS::Nova::Server",
            "properties": {
                "flavor": "m1.small",
                "image": "cirros",
                "metadata": {"word": {"get_param": "word"}},
            },
        },
        "tag": {"type": "OS::Heat::Value", "properties": {"value": {"get_resource": "vm"}}},
    },
    "outputs": {
        "secret": {"value": {"get_attr": ["password", "value"]}},
        "tag": {"value": {"get_attr": ["tag", "value"]}},
    },
}


def _stacks(api: Api) -> str:
    return f"/orchestration/v1/{api.admin.project_id}/stacks"


async def _settled(api: Api, url: str) -> dict[str, Any]:
    async def done() -> bool:
        show = (await api.client.get(url)).json()["stack"]
        return not str(show["stack_status"]).endswith("IN_PROGRESS")

    await api.plane.run_until(done, steps=60)
    return dict((await api.client.get(url)).json()["stack"])


async def _created(api: Api, name: str, template: dict[str, Any] = TEMPLATE) -> str:
    r = await api.client.post(
        _stacks(api), json={"stack_name": name, "template": template, "parameters": {"word": "hi"}}
    )
    assert r.status_code == 201, r.text
    url = f"{_stacks(api)}/{name}/{r.json()['stack']['id']}"
    assert (await _settled(api, url))["stack_status"] == "CREATE_COMPLETE"
    return url


def _adopt_body(name: str, data: Any) -> dict[str, Any]:
    """What `openstack stack adopt --adopt-file F NAME` sends: the file's text."""
    return {
        "stack_name": name,
        "disable_rollback": True,
        "adopt_stack_data": data if isinstance(data, str) else json.dumps(data),
        "parameters": {},
        "files": {},
        "environment": {},
        "timeout": None,
    }


async def _adopt(api: Api, name: str, data: Any) -> tuple[str, dict[str, Any]]:
    r = await api.client.post(_stacks(api), json=_adopt_body(name, data))
    assert r.status_code == 201, r.text
    url = f"{_stacks(api)}/{name}/{r.json()['stack']['id']}"
    return url, await _settled(api, url)


async def _live_servers(api: Api) -> list[str]:
    async with api.plane.db.read() as s:
        q = select(Server.id).where(Server.deleted.is_(False)).order_by(Server.id)
        return list((await s.execute(q)).scalars())


async def _outputs(api: Api, url: str) -> dict[str, Any]:
    shown = (await api.client.get(url)).json()["stack"]
    return {o["output_key"]: o["output_value"] for o in shown["outputs"]}


async def test_abandon_then_adopt_takes_the_same_servers_and_delete_removes_them(
    api: Api,
) -> None:
    url = await _created(api, "web")
    before = await _outputs(api, url)
    abandoned = (await api.client.delete(url + "/abandon")).json()
    vm_id = abandoned["resources"]["vm"]["resource_id"]
    assert abandoned["environment"]["parameters"] == {"word": "hi"}
    assert abandoned["resources"]["password"]["resource_data"] == {"value": before["secret"]}
    assert await _live_servers(api) == [vm_id]

    url, shown = await _adopt(api, "web2", abandoned)
    assert shown["stack_status"] == "ADOPT_COMPLETE", shown
    assert shown["stack_status_reason"] == "Stack ADOPT completed successfully"
    assert shown["parameters"]["word"] == "hi"  # from the data's environment
    # The same server is the stack's again, nothing was created, and the random string
    # and the references to the server are what they were.
    listed = (await api.client.get(url + "/resources")).json()["resources"]
    resources = {r["resource_name"]: r for r in listed}
    assert resources["vm"]["physical_resource_id"] == vm_id
    assert {r["resource_status"] for r in resources.values()} == {"ADOPT_COMPLETE"}
    assert await _outputs(api, url) == before
    assert await _live_servers(api) == [vm_id]
    events = (await api.client.get(url + "/events")).json()["events"]
    stack_events = [e["resource_status"] for e in events if e["resource_name"] == "web2"]
    assert stack_events == ["ADOPT_IN_PROGRESS", "ADOPT_COMPLETE"]
    vm = (await api.client.get(url + "/resources/vm")).json()["resource"]
    assert vm["attributes"]["show"]["id"] == vm_id  # its attributes, read from the server

    r = await api.client.delete(url)
    assert r.status_code == 204, r.text

    async def gone() -> bool:
        return await _live_servers(api) == []

    await api.plane.run_until(gone, steps=60)
    assert_heat_fault(await api.client.get(f"{_stacks(api)}/web2"), 404)


async def test_a_server_of_another_project_or_none_fails_the_adopt_alike(api: Api) -> None:
    [foreign] = await api.place()  # a server of the plane's own project, not the admin's
    url = await _created(api, "mine")
    data = (await api.client.delete(url + "/abandon")).json()
    mine = data["resources"]["vm"]["resource_id"]
    reasons = {}
    for name, rid in (("theirs", foreign), ("nothing", "0" * 8 + "-0000-0000-0000-" + "0" * 12)):
        data["resources"]["vm"]["resource_id"] = rid
        _, shown = await _adopt(api, name, data)
        assert shown["stack_status"] == "ADOPT_FAILED", shown
        reasons[name] = shown["stack_status_reason"].replace(rid, "ID")
    assert reasons["theirs"] == reasons["nothing"]
    assert reasons["theirs"] == "Resource ADOPT failed: resources.vm: Server ID could not be found."
    # Nothing was taken or deleted: the other project's server is untouched.
    async with api.plane.db.read() as s:
        q = select(func.count()).select_from(StackResource)
        held = await s.scalar(q.where(StackResource.server_id == foreign))
        assert held == 0
    assert sorted(await _live_servers(api)) == sorted([foreign, mine])


async def test_a_server_already_in_a_stack_cannot_be_adopted_again(api: Api) -> None:
    url = await _created(api, "first")
    data = (await api.client.delete(url + "/abandon")).json()
    _, shown = await _adopt(api, "again", data)
    assert shown["stack_status"] == "ADOPT_COMPLETE"
    _, shown = await _adopt(api, "twice", data)
    assert shown["stack_status"] == "ADOPT_FAILED"
    vm_id = data["resources"]["vm"]["resource_id"]
    assert f"Server {vm_id} already belongs to a stack." in shown["stack_status_reason"]


async def test_a_resource_missing_from_the_data_fails_as_in_heat(api: Api) -> None:
    url = await _created(api, "partial")
    data = (await api.client.delete(url + "/abandon")).json()
    del data["resources"]["password"]
    url, shown = await _adopt(api, "partial2", data)
    assert shown["stack_status"] == "ADOPT_FAILED"
    assert "resources.password: Resource ID was not provided." in shown["stack_status_reason"]


async def test_bad_adopt_data_and_unadoptable_types_are_refused_and_change_nothing(
    api: Api,
) -> None:
    bad = [
        ("not json {", "Invalid adopt data"),
        ("[1, 2]", "Invalid adopt data: it must be a map"),
        ({"resources": {}}, "Invalid adopt data: it has no template"),
        ({"template": TEMPLATE, "resources": "vm"}, "resources must be a map"),
    ]
    for data, why in bad:
        r = await api.client.post(_stacks(api), json=_adopt_body("bad", data))
        assert why in assert_heat_fault(r, 400)
    keypair = {"type": "OS::Nova::KeyPair", "properties": {"name": "k"}}
    inner = {"heat_template_version": "2018-08-31", "resources": {"k": keypair}}
    refused = [
        (
            {"g": {"type": "OS::Heat::ResourceGroup", "properties": {"resource_def": keypair}}},
            "resources.g.properties.resource_def: adopting a OS::Heat::ResourceGroup of "
            "OS::Nova::KeyPair is not supported",
        ),
        (
            {"n": {"type": "OS::Heat::Stack", "properties": {"template": json.dumps(inner)}}},
            "resources.n: resources.k: adopting a OS::Nova::KeyPair is not supported",
        ),
        (
            {"k": keypair},
            "resources.k: adopting a OS::Nova::KeyPair is not supported",
        ),
    ]
    for resources, why in refused:
        template = {"heat_template_version": "2018-08-31", "resources": resources}
        r = await api.client.post(_stacks(api), json=_adopt_body("bad", {"template": template}))
        message = assert_heat_fault(r, 400)
        assert why in message, message
        assert "OS::Nova::Server" in message and "OS::Heat::ResourceGroup of those" in message
    # An update does not adopt.
    url = await _created(api, "kept")
    r = await api.client.patch(url, json={"adopt_stack_data": json.dumps({"template": TEMPLATE})})
    assert "read only by a stack create" in assert_heat_fault(r, 400)
    listed = (await api.client.get(_stacks(api))).json()["stacks"]
    assert [x["stack_name"] for x in listed] == ["kept"]


async def test_adopt_can_be_turned_off(api: Api) -> None:
    url = await _created(api, "off")
    data = (await api.client.delete(url + "/abandon")).json()
    api.plane.settings.orchestration.enable_stack_adopt = False
    r = await api.client.post(_stacks(api), json=_adopt_body("off2", data))
    assert "Stack Adopt is not supported" in assert_heat_fault(r, 400)
    assert (await api.client.get(_stacks(api))).json()["stacks"] == []


@pytest.mark.parametrize("bad", ["\ud800", "a\x00b"])
async def test_adopt_data_text_is_checked_as_a_body_is(api: Api, bad: str) -> None:
    """adopt_stack_data is a document inside a string, decoded past the edge's text
    checks: a lone surrogate or a NUL in it is the same 400 as in the body's own template,
    and nothing is written."""
    template = {
        "heat_template_version": "2018-08-31",
        "resources": {"v": {"type": "OS::Heat::Value", "properties": {"value": bad}}},
    }
    direct = await api.client.post(
        _stacks(api),
        content=json.dumps({"stack_name": "direct", "template": template}),
        headers={"Content-Type": "application/json"},
    )
    assert_heat_fault(direct, 400)
    data = {
        "template": template,
        "resources": {"v": {"resource_id": "x", "type": "OS::Heat::Value"}},
    }
    for text in (json.dumps(data), json.dumps(data).replace('"x"', json.dumps(bad))):
        r = await api.client.post(_stacks(api), json=_adopt_body("adopted", text))
        message = assert_heat_fault(r, 400)
        assert message.startswith("Invalid input for field/attribute adopt_stack_data.")
    # YAML's own escapes: a NUL is made (PyYAML refuses a lone surrogate escape itself).
    escaped = "\\ud800" if bad == "\ud800" else "a\\0b"
    yaml_text = (
        "template:\n  heat_template_version: 2018-08-31\n  resources:\n    v:\n"
        f'      type: OS::Heat::Value\n      properties: {{value: "{escaped}"}}\n'
    )
    r = await api.client.post(_stacks(api), json=_adopt_body("adopted", yaml_text))
    message = assert_heat_fault(r, 400)
    if bad != "\ud800":
        assert "adopt_stack_data.template.resources.v.properties.value" in message
    assert (await api.client.get(_stacks(api))).json()["stacks"] == []


NESTED_TEMPLATE: dict[str, Any] = {
    "heat_template_version": "2018-08-31",
    "parameters": {"word": {"type": "string"}},
    "resources": {
        "group": {
            "type": "OS::Heat::ResourceGroup",
            "properties": {
                "count": 2,
                "resource_def": {
                    "type": "OS::Nova::Server",
                    "properties": {"flavor": "m1.small", "image": "cirros", "name": "m%index%"},
                },
            },
        },
        "inner": {
            "type": "OS::Heat::Stack",
            "properties": {
                "template": json.dumps(
                    {
                        "heat_template_version": "2018-08-31",
                        "resources": {
                            "vm": {
                                "type": "OS::Nova::Server",
                                "properties": {"flavor": "m1.small", "image": "cirros"},
                            }
                        },
                        "outputs": {"vm": {"value": {"get_resource": "vm"}}},
                    }
                )
            },
        },
    },
    "outputs": {
        "members": {"value": {"get_attr": ["group", "refs"]}},
        "inner": {"value": {"get_attr": ["inner", "vm"]}},
    },
}


async def test_a_group_and_a_nested_stack_round_trip_through_abandon_and_adopt(
    api: Api,
) -> None:
    url = await _created(api, "tree", NESTED_TEMPLATE)
    before = await _outputs(api, url)
    servers = await _live_servers(api)
    assert len(servers) == 3
    abandoned = (await api.client.delete(url + "/abandon")).json()
    assert set(abandoned["resources"]["group"]["resources"]) == {"0", "1"}
    assert set(abandoned["resources"]["inner"]["resources"]) == {"vm"}

    url, shown = await _adopt(api, "tree2", abandoned)
    assert shown["stack_status"] == "ADOPT_COMPLETE", shown
    assert await _outputs(api, url) == before  # the same members, the same inner server
    assert await _live_servers(api) == servers
    listed = (await api.client.get(url + "/resources?nested_depth=1")).json()["resources"]
    assert {r["resource_status"] for r in listed} == {"ADOPT_COMPLETE"}
    assert {r["physical_resource_id"] for r in listed} >= set(servers)


def _fanning_file(k: int) -> str:
    """A template file holding `k` resources of its own type, each given a parameter that
    is known only once a sibling exists (so validation counts them without following)."""
    resources: dict[str, Any] = {"v": {"type": "OS::Heat::Value", "properties": {"value": "x"}}}
    for i in range(k):
        resources[f"c{i}"] = {
            "type": "fan.yaml",
            "properties": {"p": {"get_attr": ["v", "value"]}},
        }
    return json.dumps(
        {
            "heat_template_version": "2018-08-31",
            "parameters": {"p": {"type": "string", "default": ""}},
            "resources": resources,
        }
    )


async def test_the_adoptable_check_of_nested_templates_is_bounded(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """check_adoptable follows every nested template resource to MAX_DEPTH with no bound on
    the work: a file of k resources of its own type is loaded 1 + k + k^2 + k^3 + k^4 times
    (k=8: 4681; k=30: 837,931 YAML parses on the event loop, minutes of CPU for one
    request). Validation bounds a request's nested work (nesting_checks: MAX_RESOURCES,
    MAX_TEMPLATE_BYTES); the adopt check must be bounded as well (refused with 400, or
    at most as many nested templates read as a stack may have resources)."""
    from canopy.orchestration import adopting
    from canopy.orchestration.nesting_checks import MAX_RESOURCES

    loads: list[str] = []
    real = adopting.load_template

    def counted(raw: Any, where: str) -> dict[str, Any]:
        loads.append(where)
        return real(raw, where)

    monkeypatch.setattr(adopting, "load_template", counted)
    top = {"heat_template_version": "2018-08-31", "resources": {"r": {"type": "fan.yaml"}}}
    data = {"template": top, "files": {"fan.yaml": _fanning_file(8)}, "resources": {}}
    r = await api.client.post(_stacks(api), json=_adopt_body("fan", data))
    assert r.status_code in (201, 400), r.text
    assert len(loads) <= MAX_RESOURCES, f"{len(loads)} nested templates loaded for one request"


_YAML_DATA = (
    "template:\n  heat_template_version: 2018-08-31\n  resources:\n    v:\n"
    "      type: OS::Heat::Value\n      properties: {value: x}\n"
    "resources:\n  v:\n    resource_id: abc\n"
)


@pytest.mark.parametrize(
    "entry",
    [
        "    resource_data: {when: !!timestamp 2024-01-01}\n",
        "    resource_data: {b: !!binary aGVsbG8=}\n",
        "    resource_data: {s: !!set {a: null}}\n",
    ],
)
async def test_adopt_data_yaml_with_explicit_tags_is_400_not_500(api: Api, entry: str) -> None:
    """YAML adopt data with an explicit tag (!!timestamp, !!binary, !!set): the safe loader
    without implicit timestamps still builds a datetime, bytes or a set for them, which
    nothing refuses; storing the stack's adopt data then fails (not JSON) and the create is
    a 500. It must be a 400 naming the field, and nothing written."""
    r = await api.client.post(_stacks(api), json=_adopt_body("tagged", _YAML_DATA + entry))
    assert r.status_code == 400, r.text
    assert (await api.client.get(_stacks(api))).json()["stacks"] == []


async def test_deeply_nested_yaml_adopt_data_is_400_not_500(api: Api) -> None:
    """YAML adopt data nested ~950 deep loads (under load_yaml's RecursionError guard) and
    passes check_text, but the resource's entry is then stored in the stack's adopt data
    and encoding it for the JSON column exceeds the recursion limit: a 500 (RecursionError
    inside a StatementError). Depth must be refused with a 400 up front, nothing written."""
    depth = 950
    text = _YAML_DATA + "    resource_data: {d: " + "[" * depth + "]" * depth + "}\n"
    r = await api.client.post(_stacks(api), json=_adopt_body("deep", text))
    assert r.status_code == 400, r.text
    assert (await api.client.get(_stacks(api))).json()["stacks"] == []
