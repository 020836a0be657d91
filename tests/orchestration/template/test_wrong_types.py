"""Every function of every template version, given arguments of the wrong type (lists where
maps are expected, maps and lists as keys, null, numbers, infinity), either in the template
or at run time through get_attr, answers with a TemplateError at the call and never with
another exception (which a create would turn into a 500, and the engine into a stack stuck
IN_PROGRESS)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from canopy.orchestration.template import TemplateError, parse_template
from canopy.orchestration.template.functions_base import Evaluator, Function
from canopy.orchestration.template.versions import VERSIONS

from .helpers import IDENTITY, FakeResources, evaluate

WRONG: list[Any] = [
    None, 0, 5, -1, 1.5, True, "x", "", "a,b", [], [1], [[1]], [{"a": 1}], {}, {"a": 1},
    {"a": [1]}, {"a": {"b": 1}}, {"keys": {"a": [1]}}, {"values": {"a": [1]}}, 10**30,
    float("inf"), float("nan"), "inf", {"template": "a", "params": {"a": [1]}},
    {"template": "a", "for_each": {"a": [[1]]}}, ["md5", [1]], {"port": [1]}, {"query": [1]},
]  # fmt: skip
SLOT = object()  # where a wrong value goes
# The shapes each function's arguments take, with slots for wrong values: the shape gets
# past the parse-time check, so the wrong value reaches the function's result.
SHAPES: dict[str, list[Any]] = {
    "get_param": [["p", SLOT], ["p", SLOT, SLOT], SLOT],
    "get_attr": [["r", SLOT], ["r", SLOT, SLOT]],
    "Fn::GetAtt": [["r", SLOT], SLOT],
    "str_replace": [{"template": SLOT, "params": SLOT}, {"template": "a", "params": {"a": SLOT}}],
    "str_replace_strict": [{"template": SLOT, "params": {"a": SLOT}}],
    "str_replace_vstrict": [{"template": SLOT, "params": {"a": SLOT}}],
    "list_join": [[SLOT, SLOT], [SLOT, [SLOT, SLOT]], [",", SLOT, SLOT]],
    "repeat": [
        {"template": SLOT, "for_each": SLOT},
        {"template": "%x%", "for_each": {"%x%": SLOT}, "permutations": SLOT},
    ],
    "digest": [[SLOT, SLOT], ["sha256", SLOT]],
    "str_split": [[SLOT, SLOT], [",", "a,b", SLOT]],
    "map_merge": [SLOT, [SLOT, SLOT]],
    "map_replace": [
        [SLOT, SLOT],
        [SLOT, {"keys": SLOT, "values": SLOT}],
        [{"a": 1, "b": 2}, {"keys": {"a": SLOT}}],
        [{"a": SLOT}, {"values": SLOT}],
    ],
    "filter": [[SLOT, SLOT]],
    "make_url": [{"scheme": SLOT, "host": SLOT}, {"port": SLOT}, {"query": {"a": SLOT}}],
    "list_concat": [SLOT, [SLOT, SLOT]],
    "list_concat_unique": [[SLOT, SLOT], [[SLOT], [SLOT]]],
    "contains": [[SLOT, SLOT]],
    "if": [[SLOT, SLOT, SLOT], [{"equals": [SLOT, SLOT]}, 1, 2]],
    "Fn::If": [[SLOT, SLOT, SLOT]],
    "equals": [[SLOT, SLOT]],
    "Fn::Equals": [[SLOT, SLOT]],
    "not": [SLOT], "and": [[SLOT, SLOT]], "or": [[SLOT, SLOT]],
    "Fn::Not": [[SLOT]], "Fn::And": [[SLOT, SLOT]], "Fn::Or": [[SLOT, SLOT]],
    "Fn::Select": [[SLOT, SLOT], [SLOT, [1, 2]]],
    "Fn::Join": [[SLOT, SLOT], [",", [SLOT, SLOT]]],
    "Fn::Split": [[SLOT, SLOT]],
    "Fn::Replace": [[SLOT, SLOT], [{"a": SLOT}, "abc"]],
    "Fn::FindInMap": [[SLOT, SLOT, SLOT], ["m", "a", SLOT]],
}  # fmt: skip


def _fill(shape: Any, rng: random.Random, attrs: dict[str, Any], live: bool) -> Any:
    if shape is SLOT:
        value = rng.choice(WRONG)
        if live and rng.random() < 0.6:  # known only once resource r exists
            attrs[f"a{len(attrs)}"] = value
            return {"get_attr": ["r", f"a{len(attrs) - 1}"]}
        return value
    if isinstance(shape, list):
        return [_fill(x, rng, attrs, live) for x in shape]
    if isinstance(shape, dict):
        return {k: _fill(x, rng, attrs, live) for k, x in shape.items()}
    return shape


def _template(kind: str, date: str, name: str, args: Any, condition: bool) -> dict[str, Any]:
    if kind == "hot":
        t: dict[str, Any] = {
            "heat_template_version": date,
            "parameters": {"p": {"type": "json", "default": {"a": [1]}}},
            "resources": {"r": {"type": "OS::Heat::None"}},
            "outputs": {"out": {"value": {name: args}}},
        }
        if condition:
            t["conditions"] = {"c": {name: args}}
        return t
    t = {
        "AWSTemplateFormatVersion": date,
        "Mappings": {"m": {"a": {"b": [1]}}},
        "Resources": {"r": {"Type": "OS::Heat::None"}},
        "Outputs": {"out": {"Value": {name: args}}},
    }
    if condition:
        t["Conditions"] = {"c": {name: args}}
    return t


def _only_template_errors(t: dict[str, Any], attrs: dict[str, Any]) -> None:
    try:
        bound = parse_template(t).bind({}, IDENTITY)
        for o in bound.outputs().values():
            bound.resolve(o.value, FakeResources(ids={"r": "rid"}, attrs={"r": attrs}))
    except TemplateError:
        pass


@pytest.mark.parametrize("version", sorted(VERSIONS))
def test_wrong_typed_arguments_are_template_errors(version: str) -> None:
    v = VERSIONS[version]
    rng = random.Random(f"wrong-types-{version}")
    names = sorted(set(v.table.functions) | set(v.table.condition_functions))
    for name in names:
        for _ in range(60):
            attrs: dict[str, Any] = {}
            shapes = SHAPES.get(name, [SLOT, [SLOT, SLOT]])
            args = _fill(rng.choice(shapes), rng, attrs, live=rng.random() < 0.6)
            condition = name in v.table.condition_functions and v.conditions
            t = _template(v.kind, v.date, name, args, condition)
            try:
                _only_template_errors(t, attrs)
            except Exception as e:  # the failure names the call that escaped
                raise AssertionError(f"{name} {args!r} {attrs!r}: {e!r}") from e


@pytest.mark.parametrize(
    ("value", "attrs"),
    [
        ({"map_replace": [{"a": 1}, {"keys": {"a": [1]}}]}, {}),
        ({"map_replace": [{"a": 1}, {"keys": {"a": {"b": 1}}}]}, {}),
        (
            {"map_replace": [{"get_attr": ["r", "m"]}, {"keys": {"k": {"get_attr": ["r", "l"]}}}]},
            {"m": {"k": 1}, "l": [1]},
        ),
    ],
)
def test_map_replace_refuses_a_key_replacement_that_is_not_a_string(
    value: Any, attrs: dict[str, Any]
) -> None:
    with pytest.raises(TemplateError) as e:
        evaluate(value, ctx=FakeResources(attrs={"r": attrs}))
    assert e.value.path == "outputs.out.value.map_replace"
    assert "must be a string" in e.value.message


def test_map_replace_still_renames_keys_to_strings_and_numbers() -> None:
    value = {"map_replace": [{"a": 1, "b": 2}, {"keys": {"a": "x", "b": 7}}]}
    assert evaluate(value) == {"x": 1, 7: 2}


@pytest.mark.parametrize(
    ("version", "value"),
    [
        ("2014-10-16", {"Fn::Select": [float("inf"), [1, 2]]}),
        ("2018-08-31", {"str_split": [",", "a,b", float("inf")]}),
        ("2018-08-31", {"make_url": {"host": "h", "port": {"get_attr": ["r", "inf"]}}}),
    ],
)
def test_an_infinite_index_or_port_is_a_template_error(version: str, value: Any) -> None:
    with pytest.raises(TemplateError):
        evaluate(value, version, ctx=FakeResources(attrs={"r": {"inf": float("inf")}}))


def test_find_in_map_refuses_a_value_key_that_is_not_a_string() -> None:
    t = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Mappings": {"m": {"a": {"b": 1}}},
        "Resources": {},
        "Outputs": {"o": {"Value": {"Fn::FindInMap": ["m", "a", ["b"]]}}},
        "Conditions": {"c": {"Fn::Equals": [{"Fn::FindInMap": ["m", "a", {"b": 1}]}, 1]}},
    }
    with pytest.raises(TemplateError) as e:
        parse_template(t).bind({}, IDENTITY)
    assert "has no value at" in e.value.message


class _Broken(Function):
    """A function with a bug: its result raises what no check foresaw."""

    name = "broken"
    description = ""

    def result(self, ev: Evaluator) -> Any:
        return {}[self.args]


def test_a_functions_unforeseen_error_is_a_template_error_at_the_call() -> None:
    ev = Evaluator(
        parameters={}, identity=IDENTITY, conditions=None,  # type: ignore[arg-type]
        files={}, mappings={}, ctx=None,
    )  # fmt: skip
    with pytest.raises(TemplateError) as e:
        ev.resolve({"x": [_Broken("k", "outputs.o.value.broken")]})
    assert e.value.path == "outputs.o.value.broken"
    assert "KeyError" in e.value.message
