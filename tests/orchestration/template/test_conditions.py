"""Conditions: the section, resource and output conditions, `if`, and their dependencies."""

from __future__ import annotations

import pytest

from canopy.orchestration.template import TemplateError, parse_template

from .helpers import IDENTITY, FakeResources, bind, hot, refused

TEMPLATE = hot(
    "2018-08-31",
    parameters={
        "env": {"type": "string", "default": "dev"},
        "zones": {"type": "comma_delimited_list", "default": "a,b"},
    },
    conditions={
        "prod": {"equals": [{"get_param": "env"}, "prod"]},
        "dev": {"not": "prod"},
        "in_b": {"contains": ["b", {"get_param": "zones"}]},
        "both": {"and": ["dev", "in_b"]},
        "either": {"or": ["prod", {"equals": [1, 2]}]},
        "always": True,
    },
    resources={
        "volume": {"type": "OS::Cinder::Volume", "condition": "prod"},
        "server": {
            "type": "OS::Nova::Server",
            "properties": {
                "block": {"if": ["prod", {"get_resource": "volume"}, "none"]},
                "name": {"if": [{"equals": [{"get_param": "env"}, "dev"]}, "d", "p"]},
            },
        },
    },
    outputs={
        "volume_id": {"value": {"get_resource": "volume"}, "condition": "prod"},
        "name": {"value": {"get_attr": ["server", "name"]}},
    },
)


def test_conditions_evaluate_from_parameters() -> None:
    bound = bind(TEMPLATE)
    assert bound.condition_values() == {
        "prod": False,
        "dev": True,
        "in_b": True,
        "both": True,
        "either": False,
        "always": True,
    }
    assert bind(TEMPLATE, {"env": "prod"}).condition_values()["either"] is True


def test_a_false_condition_drops_the_resource_and_its_dependency() -> None:
    bound = bind(TEMPLATE)
    assert set(bound.resources()) == {"server"}
    assert bound.resources()["server"].depends_on == frozenset()
    props = bound.resolve(bound.resources()["server"].properties, FakeResources())
    assert props == {"block": "none", "name": "d"}


def test_a_true_condition_keeps_the_resource_and_the_branch_dependency() -> None:
    bound = bind(TEMPLATE, {"env": "prod"})
    assert set(bound.resources()) == {"server", "volume"}
    assert bound.resources()["server"].depends_on == {"volume"}
    props = bound.resolve(bound.resources()["server"].properties, FakeResources({"volume": "v1"}))
    assert props == {"block": "v1", "name": "p"}


def test_an_output_whose_condition_is_false_exists_with_a_null_value() -> None:
    out = bind(TEMPLATE).outputs()["volume_id"]
    assert (out.condition_true, out.value, out.depends_on) == (False, None, frozenset())
    out = bind(TEMPLATE, {"env": "prod"}).outputs()["volume_id"]
    assert (out.condition_true, out.depends_on) == (True, {"volume"})


def test_referring_to_a_resource_whose_condition_is_false_is_refused() -> None:
    raw = hot(
        "2018-08-31",
        conditions={"off": False},
        resources={
            "a": {"type": "T", "condition": "off"},
            "b": {"type": "T", "properties": {"x": {"get_resource": "a"}}},
        },
    )
    with pytest.raises(TemplateError) as e:
        bind(raw)
    assert e.value.path == "resources.b"
    assert e.value.message == "refers to resource(s) 'a' whose condition is false"
    raw["resources"]["b"] = {"type": "T", "depends_on": ["a"]}
    with pytest.raises(TemplateError) as e:
        bind(raw)
    assert e.value.path == "resources.b.depends_on"


def test_conditions_need_2016_10_14() -> None:
    e = refused(hot("2016-04-08", conditions={"x": True}))
    assert e.message.startswith("unknown key 'conditions'")
    e = refused(hot("2016-04-08", resources={"r": {"type": "T", "condition": True}}))
    assert e.path == "resources.r"
    assert e.message.startswith("unknown key 'condition'")


def test_an_unknown_condition_name_is_refused_where_it_is_used() -> None:
    e = refused(hot("2018-08-31", conditions={"a": {"not": "nope"}}))
    assert (e.path, e.message) == ("conditions.a.not", "no condition named 'nope'")
    e = refused(hot("2018-08-31", resources={"r": {"type": "T", "condition": "nope"}}))
    assert (e.path, e.message) == ("resources.r.condition", "no condition named 'nope'")
    e = refused(hot("2018-08-31", outputs={"o": {"value": {"if": ["nope", 1, 2]}}}))
    assert (e.path, e.message) == ("outputs.o.value.if[0]", "no condition named 'nope'")


def test_conditions_refuse_non_condition_functions() -> None:
    e = refused(hot("2018-08-31", conditions={"a": {"str_split": [",", "a"]}}))
    assert (e.path, e.message) == (
        "conditions.a.str_split",
        "str_split cannot be used in a condition",
    )


def test_contains_in_conditions_needs_2017_09_01() -> None:
    e = refused(hot("2017-02-24", conditions={"a": {"contains": ["a", ["a"]]}}))
    assert e.message == (
        "contains is not available in heat_template_version 2017-02-24: "
        "it was introduced in heat_template_version 2017-09-01"
    )


def test_conditions_in_a_cycle_are_refused() -> None:
    raw = hot("2018-08-31", conditions={"a": {"not": "b"}, "b": {"not": "a"}})
    template = parse_template(raw)
    with pytest.raises(TemplateError) as e:
        template.bind({}, IDENTITY)
    assert e.value.path == "conditions"
    assert e.value.message == "conditions refer to each other in a cycle: a -> b -> a"


def test_and_or_need_two_conditions() -> None:
    e = refused(hot("2018-08-31", conditions={"a": {"and": [True]}}))
    assert (e.path, e.message) == (
        "conditions.a.and",
        "the argument must be a list of at least 2 conditions",
    )


def test_a_condition_must_be_a_boolean() -> None:
    raw = hot(
        "2018-08-31",
        parameters={"p": {"type": "string", "default": "yes"}},
        conditions={"a": {"get_param": "p"}},
    )
    with pytest.raises(TemplateError) as e:
        bind(raw)
    assert (e.value.path, e.value.message) == (
        "conditions.a",
        "a condition must be a boolean, not 'yes'",
    )


def test_boolean_parameters_make_conditions() -> None:
    raw = hot(
        "2018-08-31",
        parameters={"p": {"type": "boolean", "default": "true"}},
        conditions={"a": {"get_param": "p"}},
    )
    assert bind(raw).condition_values() == {"a": True}
    assert bind(raw, {"p": "off"}).condition_values() == {"a": False}


def test_a_resource_condition_may_be_an_expression() -> None:
    raw = hot(
        "2018-08-31",
        parameters={"n": {"type": "number", "default": 0}},
        resources={"r": {"type": "T", "condition": {"not": {"equals": [{"get_param": "n"}, 0]}}}},
    )
    assert bind(raw).resources() == {}
    assert set(bind(raw, {"n": "2"}).resources()) == {"r"}


def test_an_if_on_an_inline_expression_counts_only_the_branch_taken() -> None:
    raw = hot(
        "2018-08-31",
        parameters={"env": {"type": "string", "default": "dev"}},
        conditions={"prod": {"equals": [{"get_param": "env"}, "prod"]}},
        resources={
            "volume": {"type": "T", "condition": "prod"},
            "server": {
                "type": "T",
                "properties": {
                    "v": {
                        "if": [
                            {"equals": [{"get_param": "env"}, "prod"]},
                            {"get_resource": "volume"},
                            None,
                        ]
                    }
                },
            },
        },
    )
    assert bind(raw).resources()["server"].depends_on == frozenset()
    assert bind(raw, {"env": "prod"}).resources()["server"].depends_on == {"volume"}
