"""Review probes: 500s and unbounded work through the Heat API."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Api


def tpl(value: Any) -> dict[str, Any]:
    return {
        "heat_template_version": "2018-08-31",
        "resources": {"r": {"type": "OS::Heat::None"}},
        "outputs": {"out": {"value": value}},
    }


def server_tpl(name_value: Any) -> dict[str, Any]:
    return {
        "heat_template_version": "2018-08-31",
        "resources": {
            "s": {
                "type": "OS::Nova::Server",
                "properties": {"flavor": "m1.small", "image": "cirros", "name": name_value},
            }
        },
    }


CASES: dict[str, Any] = {
    "str_replace_1200_keys": server_tpl(
        {"str_replace": {"template": "x", "params": {f"k{i:05d}": "" for i in range(1200)}}}
    ),
    "template_string_deep_json": "DEEP",
    # 94 one-character keys; the template is 200,000 of the first: every part of the first
    # split goes down 93 more levels of _replace (200 KB of request, ~20M Python calls).
    "str_replace_parts": server_tpl(
        {
            "str_replace": {
                "template": "!" * 200_000,
                "params": {chr(c): "" for c in range(33, 127)},
            }
        }
    ),
    "list_concat_unique_big": server_tpl(
        {"list_join": [",", {"list_concat_unique": [[str(i) for i in range(30000)]]}]}
    ),
}


# What each probe must answer now: a 400 for over-limit input, else the work is done.
EXPECTED = {
    "str_replace_1200_keys": 400,
    "template_string_deep_json": 400,
    "str_replace_parts": None,  # any non-500: the emptied text is not searched again
    "list_concat_unique_big": None,
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_probe(api: Api, case: str) -> None:
    pid = api.admin.project_id
    template = CASES[case]
    if template == "DEEP":
        body: dict[str, Any] = {"stack_name": "p", "template": "[" * 100000}
    else:
        body = {"stack_name": "p", "template": template}
    for route in ("/stacks/preview", "/stacks"):
        r = await api.client.post(f"/orchestration/v1/{pid}{route}", json=body)
        assert r.status_code < 500, (route, r.text)
        if EXPECTED[case] is not None:
            assert r.status_code == EXPECTED[case], (route, r.text)
