"""Structural checks, dependency extraction and the bounds on what a template may ask."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canopy.orchestration.template import TemplateError, parse_template

from .helpers import bind, evaluate, hot, one_output, refused


def test_unknown_top_level_and_resource_keys_are_refused() -> None:
    e = refused(hot(resource={}))
    assert e.path == ""
    assert e.message.startswith("unknown key 'resource' (allowed: heat_template_version,")
    e = refused(hot(resources={"r": {"type": "T", "propertys": {}}}))
    assert e.path == "resources.r"
    assert e.message.startswith("unknown key 'propertys'")
    e = refused(hot(resources={"r": {"properties": {}}}))
    assert (e.path, e.message) == ("resources.r", "a resource needs a type (a string)")
    e = refused(hot(outputs={"o": {"valu": 1}}))
    assert e.path == "outputs.o"
    assert e.message.startswith("unknown key 'valu'")


def test_external_id_names_an_existing_resource_and_depends_on_nothing() -> None:
    # hot/external_resource.yaml: the id may come from a parameter; the resource's own
    # references do not make it wait, and others may depend on it.
    raw = hot(
        "2016-10-14",
        parameters={"id": {"type": "string", "default": "da5b940a"}},
        resources={
            "s": {
                "type": "OS::Nova::Server",
                "external_id": {"get_param": "id"},
                "properties": {"name": {"get_attr": ["v", "value"]}},
            },
            "v": {"type": "OS::Heat::Value", "properties": {"value": {"get_resource": "s"}}},
        },
    )
    defs = bind(raw).resources()
    assert (defs["s"].external_id, defs["s"].depends_on) == ("da5b940a", frozenset())
    assert (defs["v"].external_id, defs["v"].depends_on) == (None, frozenset({"s"}))


def test_external_id_refusals() -> None:
    e = refused(
        hot("2016-10-14", resources={
            "a": {"type": "T", "external_id": "x", "depends_on": "b"}, "b": {"type": "T"}})
    )  # fmt: skip
    assert (e.path, e.message) == (
        "resources.a.depends_on",
        "Invalid dependency with external T resource: x",
    )
    e = refused(hot("2016-10-14", resources={"a": {"type": "T", "external_id": ["x"]}}))
    assert e.path == "resources.a.external_id"
    e = refused(hot("2016-10-14", resources={
        "a": {"type": "T", "external_id": {"get_resource": "b"}}, "b": {"type": "T"}}))  # fmt: skip
    assert (e.path, e.message) == (
        "resources.a.external_id",
        "must not refer to a resource of the stack",
    )
    # Before 2016-10-14 the key does not exist.
    e = refused(hot("2016-04-08", resources={"a": {"type": "T", "external_id": "x"}}))
    assert e.message.startswith("unknown key 'external_id'")


def test_depends_on_must_name_resources() -> None:
    e = refused(hot(resources={"a": {"type": "T", "depends_on": ["b"]}}))
    assert (e.path, e.message) == ("resources.a.depends_on", "no resource named 'b'")
    e = refused(hot(resources={"a": {"type": "T", "depends_on": [1]}}))
    assert e.message == "must be a resource name or a list of them"


def test_dependencies_come_from_depends_on_and_references_in_properties_and_metadata() -> None:
    raw = hot(
        resources={
            "a": {"type": "T"},
            "b": {"type": "T"},
            "c": {"type": "T"},
            "d": {"type": "T"},
            "e": {
                "type": "T",
                "depends_on": "a",
                "properties": {
                    "x": [{"get_attr": ["b", "y"]}],
                    "z": {"str_replace": {"template": "t", "params": {"t": {"get_resource": "c"}}}},
                },
                "metadata": {"m": {"get_resource": "d"}},
            },
        }
    )
    assert bind(raw).resources()["e"].depends_on == {"a", "b", "c", "d"}


def test_a_dependency_cycle_is_refused_and_named() -> None:
    raw = hot(
        resources={
            "a": {"type": "T", "properties": {"x": {"get_resource": "b"}}},
            "b": {"type": "T", "properties": {"x": {"get_attr": ["c", "y"]}}},
            "c": {"type": "T", "depends_on": "a"},
        }
    )
    e = refused(raw)
    assert e.path == "resources"
    assert e.message.startswith("resources depend on each other in a cycle: ")
    cycle = e.message.split(": ")[1].split(" -> ")
    assert cycle[0] == cycle[-1] and set(cycle) == {"a", "b", "c"}
    e = refused(hot(resources={"a": {"type": "T", "depends_on": "a"}}))
    assert e.message == "resources depend on each other in a cycle: a -> a"


def test_deletion_policies() -> None:
    raw = hot(
        "2016-10-14",
        parameters={"p": {"type": "string", "default": "Snapshot"}},
        resources={
            "a": {"type": "T", "deletion_policy": "retain"},
            "b": {"type": "T", "deletion_policy": {"get_param": "p"}},
        },
    )
    resources = bind(raw).resources()
    assert (resources["a"].deletion_policy, resources["b"].deletion_policy) == (
        "Retain",
        "Snapshot",
    )
    e = refused(hot("2016-04-08", resources={"a": {"type": "T", "deletion_policy": "retain"}}))
    assert (e.path, e.message) == (
        "resources.a.deletion_policy",
        "unknown deletion policy 'retain' (known: Delete, Retain, Snapshot)",
    )


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"k": value}
    return value


def test_a_template_nested_too_deep_is_refused() -> None:
    e = refused(one_output(nested(60)))
    assert e.message == "the template is nested more than 50 levels deep"
    parse_template(one_output(nested(40)))


def test_a_template_too_large_is_refused() -> None:
    e = refused(one_output(["x" * 1000] * 2100))
    assert e.message.startswith("the template is too large")


def test_too_many_resources_are_refused() -> None:
    e = refused(hot(resources={f"r{i}": {"type": "T"} for i in range(1001)}))
    assert (e.path, e.message) == ("resources", "more than 1000 resources")


def test_evaluation_is_bounded_even_when_each_step_is_small() -> None:
    # 9000 items (under repeat's own bound) of 1000 characters: 9 million characters
    big = {"repeat": {"template": "y" * 1000, "for_each": {"y": [str(i) for i in range(9000)]}}}
    with pytest.raises(TemplateError) as e:
        evaluate({"list_join": ["", big]})
    assert e.value.message == (
        "evaluating this value produces more than 5000000 characters or elements"
    )
    assert e.value.path.startswith("outputs.out.value.list_join")


# properties


words = st.lists(st.text(alphabet="abc;", max_size=5), max_size=6)


@given(words)
def test_str_split_undoes_list_join(items: list[str]) -> None:
    if any(";" in i for i in items) or not items:
        return
    joined = evaluate({"list_join": [";", items]})
    assert evaluate({"str_split": [";", joined]}) == items


@given(st.text(alphabet="ab,", max_size=20))
def test_list_join_undoes_str_split(text: str) -> None:
    parts = evaluate({"str_split": [",", text]})
    assert evaluate({"list_join": [",", parts]}) == text


@given(
    st.dictionaries(st.sampled_from(["$a", "$ab", "$b", "x"]), st.text(alphabet="xyz", max_size=3))
)
def test_str_replace_with_fresh_values_matches_a_reference(params: dict[str, str]) -> None:
    template = "$a-$ab-$b-x"
    out = evaluate({"str_replace": {"template": template, "params": params}})
    # reference: scan left to right, longest key first at each position
    keys = sorted(params, key=lambda k: (-len(k), k))
    expected, i = "", 0
    while i < len(template):
        for k in keys:
            if template.startswith(k, i):
                expected += params[k]
                i += len(k)
                break
        else:
            expected += template[i]
            i += 1
    assert out == expected
