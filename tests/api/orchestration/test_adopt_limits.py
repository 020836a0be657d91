"""What bounds an adopt request: its data JSON's types only, and the check of its nested
templates' types a bounded amount of work (adopting.py); YAML tags JSON has no type for
are refused in templates too (nesting.py's loader)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from canopy.orchestration import adopting
from tests.api.conftest import Api

from .test_adopt import _YAML_DATA, _adopt_body, _stacks


def _file(rtype: str = "OS::Heat::None") -> str:
    return json.dumps({"heat_template_version": "2018-08-31", "resources": {"v": {"type": rtype}}})


async def _refused(api: Api, data: Any) -> str:
    r = await api.client.post(_stacks(api), json=_adopt_body("limited", data))
    assert r.status_code == 400, r.text
    assert (await api.client.get(_stacks(api))).json()["stacks"] == []
    return str(r.json()["error"]["message"])


@pytest.mark.parametrize("number", [".nan", ".inf", "-.inf"])
async def test_yaml_adopt_data_with_a_number_json_cannot_hold_is_400(api: Api, number: str) -> None:
    why = await _refused(api, _YAML_DATA + f"    resource_data: {{n: {number}}}\n")
    assert "adopt_stack_data.resources.v.resource_data.n" in why


async def test_json_adopt_data_with_nan_is_400(api: Api) -> None:
    text = json.dumps({"template": {"heat_template_version": "2018-08-31"}, "x": float("nan")})
    assert "NaN" in text
    assert "adopt_stack_data.x" in await _refused(api, text)


async def test_adopt_data_nested_just_within_the_bound_is_not_refused_for_depth(
    api: Api,
) -> None:
    """The bound is on depth past what real data holds, not on data as deep as allowed."""
    # adopt_stack_data (0) .resources .v .resource_data (3): the n-th list is 3 + n deep
    inner = adopting.MAX_DATA_DEPTH - 3
    over = _YAML_DATA + "    resource_data: {d: " + "[" * (inner + 1) + "]" * (inner + 1) + "}\n"
    assert "nested more than" in await _refused(api, over)
    text = _YAML_DATA + "    resource_data: {d: " + "[" * inner + "]" * inner + "}\n"
    r = await api.client.post(_stacks(api), json=_adopt_body("deep", text))
    assert r.status_code == 201, r.text


async def test_past_the_nested_check_budget_the_adopt_is_refused(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Distinct nested templates are each checked: past MAX_NESTED_CHECKS, a 400."""
    monkeypatch.setattr(adopting, "MAX_NESTED_CHECKS", 2)
    files = {f"{n}.yaml": _file() for n in "abc"}
    top = {
        "heat_template_version": "2018-08-31",
        "resources": {n: {"type": f"{n}.yaml"} for n in "abc"},
    }
    data = {"template": top, "files": files, "resources": {}}
    assert "more than 2 nested templates to check" in await _refused(api, data)
    monkeypatch.setattr(adopting, "MAX_NESTED_CHECKS", 3)
    r = await api.client.post(_stacks(api), json=_adopt_body("three", data))
    assert r.status_code == 201, r.text


async def test_a_file_used_many_times_is_parsed_once_and_still_refused(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Following a file once per depth does not skip what it holds: a type canopy cannot
    adopt in a file every resource of the template uses is refused, the file read once."""
    loads: list[str] = []
    real = adopting.load_template

    def counted(raw: Any, where: str) -> dict[str, Any]:
        loads.append(where)
        return real(raw, where)

    monkeypatch.setattr(adopting, "load_template", counted)
    top = {
        "heat_template_version": "2018-08-31",
        "resources": {f"r{i}": {"type": "bad.yaml"} for i in range(20)},
    }
    files = {"bad.yaml": _file("OS::Heat::WaitConditionHandle")}
    why = await _refused(api, {"template": top, "files": files, "resources": {}})
    assert "adopting a OS::Heat::WaitConditionHandle is not supported" in why
    assert loads == ["files.bad.yaml"]


@pytest.mark.parametrize(
    "tagged", ["!!binary aGVsbG8=", "!!timestamp 2024-01-01", "!!set {a: null}"]
)
async def test_a_nested_template_file_with_a_non_json_tag_is_400(api: Api, tagged: str) -> None:
    """A template resource's file is loaded like adopt data: no tag for a type JSON lacks
    (its values would be stored with the child stack's template)."""
    inner = (
        "heat_template_version: 2018-08-31\nresources:\n  v:\n    type: OS::Heat::Value\n"
        f"    properties: {{value: x}}\n    metadata: {{m: {tagged}}}\n"
    )
    top = {"heat_template_version": "2018-08-31", "resources": {"r": {"type": "inner.yaml"}}}
    body = {"stack_name": "tagged", "template": top, "files": {"inner.yaml": inner}}
    r = await api.client.post(_stacks(api), json=body)
    assert r.status_code == 400, r.text
    assert "is not allowed: only JSON's types" in r.json()["error"]["message"]
    assert (await api.client.get(_stacks(api))).json()["stacks"] == []
