"""The Heat API as python-heatclient uses it: create, the 302 look-ups, show, events,
outputs, update, delete, and Heat's error body for bad input (never a 500)."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.api.conftest import Api
from tests.api.tokens import caller

BASE = "http://canopy.test"

TEMPLATE: dict[str, Any] = {
    "heat_template_version": "2018-08-31",
    "description": "two values",
    "parameters": {"word": {"type": "string", "default": "hello"}},
    "resources": {
        "first": {"type": "OS::Heat::Value", "properties": {"value": {"get_param": "word"}}},
        "second": {
            "type": "OS::Heat::Value",
            "properties": {"value": {"get_attr": ["first", "value"]}},
        },
    },
    "outputs": {
        "said": {"value": {"get_attr": ["second", "value"]}, "description": "what was said"},
    },
}


async def _create(api: Api, name: str, template: dict[str, Any] | None = None, **kw: Any) -> str:
    pid = api.admin.project_id
    body = {
        "stack_name": name,
        "disable_rollback": True,
        "parameters": {},
        "template": template or TEMPLATE,
        "files": {},
        "environment": {},
        **kw,
    }
    r = await api.client.post(f"/orchestration/v1/{pid}/stacks", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["stack"]["id"])


def assert_heat_fault(r: httpx.Response, code: int) -> str:
    assert r.status_code == code, r.text
    body = r.json()
    assert set(body) == {"code", "title", "explanation", "error"}
    assert body["code"] == code and body["title"] and body["explanation"]
    assert set(body["error"]) == {"message", "type", "traceback"}
    assert body["error"]["traceback"] is None
    message = body["error"]["message"]
    assert isinstance(message, str) and message
    return message


async def test_create_answers_201_with_location_and_the_bare_id_redirects(api: Api) -> None:
    pid = api.admin.project_id
    r = await api.client.post(
        f"/orchestration/v1/{pid}/stacks",
        json={"stack_name": "web", "template": TEMPLATE, "parameters": {"word": "hi"}},
    )
    assert r.status_code == 201, r.text
    sid = r.json()["stack"]["id"]
    canonical = f"{BASE}/orchestration/v1/{pid}/stacks/web/{sid}"
    assert r.headers["location"] == canonical
    assert r.json()["stack"]["links"] == [{"href": canonical, "rel": "self"}]
    # What the client does next: the bare id, with a query.
    r = await api.client.get(f"/orchestration/v1/{pid}/stacks/{sid}?resolve_outputs=False")
    assert r.status_code == 302
    assert r.headers["location"] == canonical + "?resolve_outputs=False"
    # By name, with a subpath.
    r = await api.client.get(f"/orchestration/v1/{pid}/stacks/web/events?sort_dir=asc")
    assert r.status_code == 302
    assert r.headers["location"] == canonical + "/events?sort_dir=asc"
    r = await api.client.delete(f"/orchestration/v1/{pid}/stacks/web")
    assert r.status_code == 302 and r.headers["location"] == canonical
    show = (await api.client.get(canonical + "?resolve_outputs=False")).json()["stack"]
    assert show["stack_status"] == "CREATE_IN_PROGRESS"
    assert show["parameters"]["word"] == "hi"
    assert show["parameters"]["OS::stack_id"] == sid
    assert "outputs" not in show


async def test_a_stack_completes_and_shows_events_and_outputs(api: Api) -> None:
    pid = api.admin.project_id
    sid = await _create(api, "vals")
    await api.plane.worker.orchestration.run_once()
    url = f"/orchestration/v1/{pid}/stacks/vals/{sid}"
    show = (await api.client.get(url)).json()["stack"]
    assert show["stack_status"] == "CREATE_COMPLETE", show
    assert show["description"] == "two values"
    assert show["outputs"] == [
        {"output_key": "said", "output_value": "hello", "description": "what was said"}
    ]
    r = await api.client.get(url + "/outputs/said")
    assert r.json() == {
        "output": {"output_key": "said", "output_value": "hello", "description": "what was said"}
    }
    assert_heat_fault(await api.client.get(url + "/outputs/nope"), 404)
    resources = (await api.client.get(url + "/resources")).json()["resources"]
    by_name = {x["resource_name"]: x for x in resources}
    assert by_name["first"]["required_by"] == ["second"]
    assert by_name["second"]["resource_status"] == "CREATE_COMPLETE"
    one = (await api.client.get(url + "/resources/second")).json()["resource"]
    assert one["attributes"] == {"value": "hello"}
    # Events, as `stack create --wait` polls them.
    events = (await api.client.get(url + "/events?sort_dir=asc")).json()["events"]
    assert events[0]["resource_status"] == "CREATE_IN_PROGRESS"
    last = events[-1]
    assert (last["resource_name"], last["physical_resource_id"]) == ("vals", sid)
    assert last["resource_status"] == "CREATE_COMPLETE"
    stack_link = next(x["href"] for x in last["links"] if x["rel"] == "stack")
    assert stack_link.endswith(sid)
    # A marker: what came after it; desc with limit 1: the newest.
    r = await api.client.get(url + f"/events?sort_dir=asc&marker={events[1]['id']}")
    assert [e["id"] for e in r.json()["events"]] == [e["id"] for e in events[2:]]
    r = await api.client.get(url + "/events?sort_dir=desc&limit=1")
    assert [e["id"] for e in r.json()["events"]] == [last["id"]]
    r = await api.client.get(url + "/events?resource_name=first")
    assert {e["resource_name"] for e in r.json()["events"]} == {"first"}
    assert (await api.client.get(url + "/template")).json() == TEMPLATE


async def test_patch_existing_keeps_the_template_and_changes_a_parameter(api: Api) -> None:
    pid = api.admin.project_id
    sid = await _create(api, "upd")
    await api.plane.worker.orchestration.run_once()
    url = f"/orchestration/v1/{pid}/stacks/upd/{sid}"
    body = {"parameters": {"word": "bye"}, "template": None, "files": {}, "environment": {}}
    r = await api.client.patch(url, json=body)
    assert r.status_code == 202, r.text
    show = (await api.client.get(url)).json()["stack"]
    assert show["stack_status"] == "UPDATE_IN_PROGRESS"  # flipped before the answer
    await api.plane.worker.orchestration.run_once()
    show = (await api.client.get(url)).json()["stack"]
    assert show["stack_status"] == "UPDATE_COMPLETE", show
    assert show["outputs"][0]["output_value"] == "bye"
    assert (await api.client.get(url + "/template")).json() == TEMPLATE
    # A PUT without a template is refused; nothing changes.
    assert_heat_fault(await api.client.put(url, json={"parameters": {}}), 400)


async def test_delete_answers_204_and_the_stack_goes(api: Api) -> None:
    pid = api.admin.project_id
    sid = await _create(api, "bye")
    await api.plane.worker.orchestration.run_once()
    url = f"/orchestration/v1/{pid}/stacks/bye/{sid}"
    assert (await api.client.delete(url)).status_code == 204
    await api.plane.worker.orchestration.run_once()
    show = (await api.client.get(url)).json()["stack"]
    assert show["stack_status"] == "DELETE_COMPLETE"
    listed = (await api.client.get(f"/orchestration/v1/{pid}/stacks")).json()["stacks"]
    assert sid not in [x["id"] for x in listed]
    assert_heat_fault(await api.client.get(f"/orchestration/v1/{pid}/stacks/bye"), 404)
    # The name is free again.
    await _create(api, "bye")


async def test_list_filters_sorts_and_pages(api: Api) -> None:
    pid = api.admin.project_id
    ids = [await _create(api, name) for name in ("b", "a", "c")]
    base = f"/orchestration/v1/{pid}/stacks"
    r = await api.client.get(base + "?sort_keys=stack_name&sort_dir=asc")
    assert [x["stack_name"] for x in r.json()["stacks"]] == ["a", "b", "c"]
    r = await api.client.get(base + f"?sort_keys=stack_name&sort_dir=asc&limit=1&marker={ids[1]}")
    assert [x["stack_name"] for x in r.json()["stacks"]] == ["b"]
    r = await api.client.get(base + "?name=c")
    assert [x["id"] for x in r.json()["stacks"]] == [ids[2]]
    r = await api.client.get(base + "?status=CREATE_IN_PROGRESS")
    assert len(r.json()["stacks"]) == 3
    assert_heat_fault(await api.client.get(base + "?sort_keys=bogus"), 400)
    assert_heat_fault(await api.client.get(base + "?limit=x"), 400)
    assert_heat_fault(await api.client.get(base + "?marker=nope"), 404)


async def test_tenancy_another_projects_stack_is_404_and_its_path_403(api: Api) -> None:
    pid = api.admin.project_id
    sid = await _create(api, "mine")
    other = await caller(api.plane.db, api.plane.clock, project="other", user="o", role="member")
    h = other.headers
    # Its own project's path: the admin's stack does not exist there.
    r = await api.client.get(f"/orchestration/v1/{other.project_id}/stacks/mine", headers=h)
    assert_heat_fault(r, 404)
    r = await api.client.get(f"/orchestration/v1/{other.project_id}/stacks/mine/{sid}", headers=h)
    assert_heat_fault(r, 404)
    # The admin's project in the path: refused.
    assert_heat_fault(await api.client.get(f"/orchestration/v1/{pid}/stacks", headers=h), 403)
    r = await api.client.delete(f"/orchestration/v1/{pid}/stacks/mine/{sid}", headers=h)
    assert_heat_fault(r, 403)
    listed = (
        await api.client.get(f"/orchestration/v1/{other.project_id}/stacks", headers=h)
    ).json()
    assert listed == {"stacks": []}


async def test_bad_input_is_a_heat_fault_and_creates_nothing(api: Api) -> None:
    pid = api.admin.project_id
    url = f"/orchestration/v1/{pid}/stacks"
    unknown_type = {
        "heat_template_version": "2018-08-31",
        "resources": {"x": {"type": "OS::Neutron::Net"}},
    }
    direct_flavor = {
        "heat_template_version": "2018-08-31",
        "resources": {
            "vm": {"type": "OS::Nova::Server", "properties": {"flavor": "m9.x", "image": "cirros"}}
        },
    }
    bad_prop = {
        "heat_template_version": "2018-08-31",
        "resources": {"v": {"type": "OS::Heat::Value", "properties": {"nope": 1, "value": 1}}},
    }
    cases: list[tuple[Any, int, str]] = [
        ({"stack_name": "s"}, 400, "template"),
        ({"stack_name": "1bad", "template": TEMPLATE}, 400, "name"),
        ({"stack_name": "s", "template": unknown_type}, 400, "OS::Nova::Server"),
        ({"stack_name": "s", "template": direct_flavor}, 400, "m9.x"),
        ({"stack_name": "s", "template": bad_prop}, 400, "nope"),
        ({"stack_name": "s", "template": {"resources": "x"}}, 400, ""),
        ({"stack_name": "s", "template": TEMPLATE, "timeout_mins": "soon"}, 400, "timeout"),
        ({"stack_name": "s", "template": TEMPLATE, "template_url": "http://x"}, 400, "url"),
        ({"stack_name": "s", "template": TEMPLATE, "parameters": "x"}, 400, "parameters"),
        ([], 400, ""),
    ]
    for body, code, words in cases:
        message = assert_heat_fault(await api.client.post(url, json=body), code)
        assert words in message, (body, message)
    r = await api.client.post(
        url, content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert_heat_fault(r, 400)
    assert (await api.client.get(url)).json() == {"stacks": []}
    await _create(api, "taken")
    assert_heat_fault(
        await api.client.post(url, json={"stack_name": "taken", "template": TEMPLATE}), 409
    )


async def test_validate_resource_types_and_template_versions(api: Api) -> None:
    pid = api.admin.project_id
    base = f"/orchestration/v1/{pid}"
    r = await api.client.post(base + "/validate", json={"template": TEMPLATE})
    assert r.status_code == 200, r.text
    assert r.json()["Description"] == "two values"
    assert r.json()["Parameters"]["word"]["Default"] == "hello"
    types = (await api.client.get(base + "/resource_types")).json()["resource_types"]
    assert {"OS::Nova::Server", "OS::Heat::RandomString", "OS::Heat::Value"} <= set(types)
    server = (await api.client.get(base + "/resource_types/OS::Nova::Server")).json()
    assert server["properties"]["flavor"]["required"] is True
    allowed = {k: v["update_allowed"] for k, v in server["properties"].items()}
    assert allowed["metadata"] and allowed["tags"] and allowed["name"]
    assert allowed["user_data"] and allowed["user_data_update_policy"]
    assert not allowed["flavor"] and not allowed["image"]
    assert "canopy" in server["attributes"]
    ec2 = (await api.client.get(base + "/resource_types/AWS::EC2::Instance")).json()
    in_place = {k for k, v in ec2["properties"].items() if v["update_allowed"]}
    assert in_place == {"Tags"}  # InstanceType (a resize in Heat) replaces it in canopy
    assert_heat_fault(await api.client.get(base + "/resource_types/OS::Nope"), 404)
    versions = (await api.client.get(base + "/template_versions")).json()["template_versions"]
    assert any(v["version"] == "heat_template_version.2018-08-31" for v in versions)
    r = await api.client.get(base + "/template_versions/heat_template_version.2018-08-31/functions")
    plain = {f["functions"] for f in r.json()["template_functions"]}
    assert "get_attr" in plain and "equals" not in plain
    r = await api.client.get(
        base + "/template_versions/heat_template_version.2018-08-31/functions"
        "?with_condition_func=true"
    )
    both = {f["functions"] for f in r.json()["template_functions"]}
    assert both == plain | {"equals", "not", "and", "or"}  # and get_param (in both), once
    assert len(r.json()["template_functions"]) == len(both)
    assert_heat_fault(await api.client.get(base + "/template_versions/nope/functions"), 404)


async def test_documents_sent_as_text_are_checked_as_a_body_is(api: Api) -> None:
    """A template sent as a string, a nested template in `files` and a `json` parameter's
    value are decoded past the edge's text checks: a lone surrogate or a NUL in them is a
    400 (before, the stack was stored and its GET .../template answered 500)."""
    stacks = f"/orchestration/v1/{api.admin.project_id}/stacks"

    def value(v: str) -> dict[str, Any]:
        return {
            "heat_template_version": "2018-08-31",
            "resources": {"v": {"type": "OS::Heat::Value", "properties": {"value": v}}},
        }

    child = (
        "heat_template_version: 2018-08-31\nresources:\n  v:\n    type: OS::Heat::Value\n"
        '    properties: {value: "ESCAPE"}\n'
    )
    param = {
        "heat_template_version": "2018-08-31",
        "parameters": {"doc": {"type": "json"}},
        "resources": {"v": {"type": "OS::Heat::Value", "properties": {"value": "x"}}},
    }
    for bad, escape in (("\ud800", "\\ud800"), ("a\x00b", "a\\0b")):
        bodies: list[tuple[dict[str, Any], str]] = [
            ({"template": json.dumps(value(bad))}, "template.resources.v.properties.value"),
            (
                {
                    "template": {
                        "heat_template_version": "2018-08-31",
                        "resources": {"c": {"type": "child.yaml"}},
                    },
                    "files": {"child.yaml": child.replace("ESCAPE", escape)},
                },
                # PyYAML refuses a lone surrogate escape itself; a NUL it makes.
                "files.child.yaml"
                + ("" if escape == "\\ud800" else ".resources.v.properties.value"),
            ),
            (
                {"template": param, "parameters": {"doc": json.dumps({"k": bad})}},
                "field/attribute value.k",
            ),
        ]
        for body, where in bodies:
            r = await api.client.post(stacks, json={"stack_name": "s", **body})
            assert where in assert_heat_fault(r, 400), body
    assert (await api.client.get(stacks)).json()["stacks"] == []
    # A template sent as text that is valid is still taken.
    r = await api.client.post(stacks, json={"stack_name": "s", "template": json.dumps(TEMPLATE)})
    assert r.status_code == 201, r.text


async def test_a_resource_s_metadata_is_its_template_section_resolved_now(api: Api) -> None:
    """`stack resource show` and `stack resource metadata`: the template's metadata section
    of the resource, its functions resolved against the stack as it is."""
    pid = api.admin.project_id
    template = json.loads(json.dumps(TEMPLATE))
    template["resources"]["second"]["metadata"] = {
        "said": {"get_attr": ["first", "value"]},
        "word": {"get_param": "word"},
        "fixed": [1, {"deep": True}],
    }
    sid = await _create(api, "meta", template)
    await api.plane.worker.orchestration.run_once()
    url = f"/orchestration/v1/{pid}/stacks/meta/{sid}/resources"
    want = {"said": "hello", "word": "hello", "fixed": [1, {"deep": True}]}
    shown = (await api.client.get(url + "/second")).json()["resource"]
    assert shown["metadata"] == want
    r = await api.client.get(url + "/second/metadata")
    assert r.status_code == 200, r.text
    assert r.json() == {"metadata": want}
    assert (await api.client.get(url + "/first/metadata")).json() == {"metadata": {}}
    assert_heat_fault(await api.client.get(url + "/nope/metadata"), 404)


async def test_stack_list_takes_heat_s_four_tag_filters(api: Api) -> None:
    pid = api.admin.project_id
    for name, tags in (("ab", "a,b"), ("a", "a"), ("c", "c"), ("none", None)):
        await _create(api, name, **({"tags": tags} if tags else {}))

    async def listed(query: str) -> list[str]:
        r = await api.client.get(f"/orchestration/v1/{pid}/stacks?{query}")
        assert r.status_code == 200, r.text
        return sorted(x["stack_name"] for x in r.json()["stacks"])

    assert await listed("tags=a,b") == ["ab"]
    assert await listed("tags=a") == ["a", "ab"]
    assert await listed("tags_any=b,c") == ["ab", "c"]
    assert await listed("not_tags=a,b") == ["a", "c", "none"]
    assert await listed("not_tags_any=a") == ["c", "none"]
    assert await listed("tags_any=a&not_tags=b") == ["a"]


async def test_resource_types_are_filtered_by_name_pattern_and_support_status(api: Api) -> None:
    base = f"/orchestration/v1/{api.admin.project_id}/resource_types"

    async def types(query: str) -> list[str]:
        r = await api.client.get(f"{base}?{query}")
        assert r.status_code == 200, r.text
        return list(r.json()["resource_types"])

    everything = await types("")
    nova = await types("name=OS::Nova::")
    assert nova and all(t.startswith("OS::Nova::") for t in nova)
    assert set(nova) == {t for t in everything if t.startswith("OS::Nova::")}
    assert await types("name=Nova") == []  # matched at the start, as Heat's re.match
    assert await types("name=.*Server$") == sorted(t for t in everything if t.endswith("Server"))
    assert await types("support_status=SUPPORTED") == everything
    assert await types("support_status=DEPRECATED") == []
    assert await types("version=2014.1") == []  # canopy records no version for its types
    described = (await api.client.get(f"{base}?name=OS::Heat::None&with_description=true")).json()
    assert [d["resource_type"] for d in described["resource_types"]] == ["OS::Heat::None"]
    # Bad input: a 400 in Heat's body; a catastrophic pattern is linear on RE2.
    assert "support status" in assert_heat_fault(
        await api.client.get(f"{base}?support_status=BOGUS"), 400
    )
    assert "regular expression" in assert_heat_fault(await api.client.get(f"{base}?name=(a"), 400)
    assert await types("name=(a%2B)%2B$") == []
    assert_heat_fault(await api.client.get(f"{base}?name=" + "a" * 300), 400)
