"""Parameters: types, defaults, constraints, custom constraints, groups, how they show."""

from __future__ import annotations

from typing import Any

import pytest

from canopy.orchestration.template import TemplateError, limits, parse_template
from canopy.orchestration.template.constraints import (
    PatternTimeout,
    compile_pattern,
    pattern_budget,
)

from .helpers import IDENTITY, hot, refused


def declare(version: str = "2018-08-31", **params: Any) -> dict[str, Any]:
    return hot(version, parameters=params)


def bind_error(raw: dict[str, Any], values: dict[str, Any], check: Any = None) -> TemplateError:
    with pytest.raises(TemplateError) as e:
        parse_template(raw).bind(values, IDENTITY, check)
    return e.value


@pytest.mark.parametrize(
    ("ptype", "given", "typed"),
    [
        ("string", "abc", "abc"),
        ("string", 12, "12"),
        ("number", "42", 42),
        ("number", "2.5", 2.5),
        ("number", 7, 7),
        ("json", '{"a": [1]}', {"a": [1]}),
        ("json", "", {}),
        ("json", [1, 2], [1, 2]),
        ("comma_delimited_list", "a,b, c", ["a", "b", " c"]),
        ("comma_delimited_list", "", []),
        ("comma_delimited_list", ["x", 1], ["x", "1"]),
        ("boolean", "yes", True),
        ("boolean", "OFF", False),
        ("boolean", "1", True),
        ("boolean", False, False),
    ],
)
def test_values_get_their_types(ptype: str, given: Any, typed: Any) -> None:
    bound = parse_template(declare(p={"type": ptype})).bind({"p": given}, IDENTITY)
    assert bound.parameters["p"] == typed


@pytest.mark.parametrize(
    ("ptype", "given", "why"),
    [
        ("number", "ten", "'ten' is not a number"),
        ("number", "nan", "'nan' is not a number"),
        ("json", "{", "value must be valid JSON: Expecting property name enclosed in "
                      "double quotes: line 1 column 2 (char 1)"),
        ("json", "3", "value must be a JSON map or list"),
        ("boolean", "maybe", "'maybe' is not a boolean"),
        ("string", {"a": 1}, '{"a": 1} is not a string'),
    ],
)  # fmt: skip
def test_values_of_the_wrong_type_are_refused(ptype: str, given: Any, why: str) -> None:
    e = bind_error(declare(p={"type": ptype}), {"p": given})
    assert (e.path, e.message) == ("parameters.p", f"parameter 'p' is invalid: {why}")


def test_defaults_fill_in_and_missing_values_are_named() -> None:
    raw = declare(a={"type": "string", "default": "x"}, b={"type": "number"}, c={"type": "json"})
    e = bind_error(raw, {})
    assert (e.path, e.message) == ("", "the parameter(s) b, c need a value")
    bound = parse_template(raw).bind({"b": "1", "c": "[]"}, IDENTITY)
    assert bound.parameters == {"a": "x", "b": 1, "c": []}


def test_undeclared_parameters_are_refused() -> None:
    e = bind_error(declare(a={"type": "string", "default": ""}), {"zz": "1"})
    assert e.message == "the template does not declare parameter(s) zz"


def test_range_length_allowed_values_and_pattern() -> None:
    raw = declare(
        n={"type": "number", "default": 5, "constraints": [{"range": {"min": 1, "max": 10}}]},
        s={
            "type": "string",
            "default": "ab",
            "constraints": [
                {"length": {"min": 2, "max": 4}},
                {"allowed_pattern": "[a-z]+", "description": "lower-case letters only"},
            ],
        },
        f={
            "type": "string",
            "default": "m1.small",
            "constraints": [{"allowed_values": ["m1.small", "m1.large"]}],
        },
        z={
            "type": "comma_delimited_list",
            "default": "a",
            "constraints": [{"allowed_values": ["a", "b"]}],
        },
    )
    parse_template(raw).bind({"n": "10", "s": "abcd", "z": "a,b"}, IDENTITY)
    assert bind_error(raw, {"n": "11"}).message == (
        "parameter 'n' is invalid: 11 is out of range (min: 1, max: 10)"
    )
    assert bind_error(raw, {"s": "abcde"}).message == (
        "parameter 's' is invalid: length (5) is out of range (min: 2, max: 4)"
    )
    assert (
        bind_error(raw, {"s": "aB"}).message == "parameter 's' is invalid: lower-case letters only"
    )
    assert bind_error(raw, {"f": "m1.tiny"}).message == (
        'parameter \'f\' is invalid: "m1.tiny" is not an allowed value ["m1.small", "m1.large"]'
    )
    assert bind_error(raw, {"z": "a,c"}).message == (
        'parameter \'z\' is invalid: "c" is not an allowed value ["a", "b"]'
    )


def test_allowed_pattern_matches_the_whole_value_with_re2() -> None:
    raw = declare(s={"type": "string", "constraints": [{"allowed_pattern": "a+"}]})
    parse_template(raw).bind({"s": "aaa"}, IDENTITY)
    assert (
        bind_error(raw, {"s": "aab"}).message
        == 'parameter \'s\' is invalid: "aab" does not match pattern "a+"'
    )
    # a pattern a backtracking engine would take forever on is linear in RE2
    evil = declare(s={"type": "string", "constraints": [{"allowed_pattern": "(a+)+$"}]})
    assert bind_error(evil, {"s": "a" * 5000 + "!"}).message.endswith(
        'does not match pattern "(a+)+$"'
    )


def test_patterns_are_checked_and_bounded() -> None:
    e = refused(declare(s={"type": "string", "constraints": [{"allowed_pattern": "(a"}]}))
    assert e.path == "parameters.s.constraints[0].allowed_pattern"
    assert e.message.startswith("allowed_pattern is not a valid pattern: ")
    e = refused(declare(s={"type": "string", "constraints": [{"allowed_pattern": "a" * 1001}]}))
    assert e.message == "allowed_pattern is longer than 1000 characters"
    e = refused(declare(s={"type": "string", "constraints": [{"allowed_pattern": "(?=a"}]}))
    assert e.message.startswith("allowed_pattern is not a valid pattern")  # for no engine


def test_a_lookahead_pattern_real_templates_use_is_checked_within_a_time_limit() -> None:
    # hot/Windows/ActiveDirectoryController's DNS name: RE2 has no lookahead, so it runs
    # on the backtracking engine, each match limited in time.
    dns = "[A-Za-z0-9]+(?=[\\.\\-][a-zA-Z0-9])*\\.[a-zA-z09]+"
    raw = declare(s={"type": "string", "constraints": [{"allowed_pattern": dns}]})
    parse_template(raw).bind({"s": "corp.example"}, IDENTITY)
    assert bind_error(raw, {"s": "no dots"}).message.endswith(f'does not match pattern "{dns}"')
    # A value that would take a backtracking engine forever is refused at the time limit.
    evil = declare(s={"type": "string", "constraints": [{"allowed_pattern": "(?=a)(a+)+$"}]})
    message = bind_error(evil, {"s": "a" * 5000 + "!"}).message
    assert message.endswith(
        'cannot be checked against pattern "(?=a)(a+)+$": matching took longer than '
        f"{limits.PATTERN_SECONDS} s"
    )


def test_modulo_needs_2017_02_24() -> None:
    raw = declare(
        n={"type": "number", "default": 3, "constraints": [{"modulo": {"step": 2, "offset": 1}}]}
    )
    parse_template(raw).bind({"n": 7}, IDENTITY)
    assert bind_error(raw, {"n": 4}).message == (
        "parameter 'n' is invalid: 4 is not a multiple of 2 with an offset of 1"
    )
    e = refused({**raw, "heat_template_version": "2016-10-14"})
    assert e.path == "parameters.n.constraints[0]"
    assert e.message.startswith("unknown constraint 'modulo'")
    e = refused(
        declare(n={"type": "number", "constraints": [{"modulo": {"step": 2, "offset": 3}}]})
    )
    assert e.message == "offset must be smaller (by absolute value) than step"


def test_a_constraint_must_fit_the_type() -> None:
    e = refused(declare(s={"type": "string", "constraints": [{"range": {"min": 1}}]}))
    assert (e.path, e.message) == (
        "parameters.s.constraints[0].range",
        "range does not apply to a parameter of type String",
    )


def test_a_default_must_meet_the_constraints() -> None:
    e = refused(declare(n={"type": "number", "default": 0, "constraints": [{"range": {"min": 1}}]}))
    assert (e.path, e.message) == (
        "parameters.n.default",
        "parameter 'n' is invalid: 0 is out of range (min: 1, max: None)",
    )
    e = refused(declare(n={"type": "number", "default": "x"}))
    assert e.message == "parameter 'n' is invalid: 'x' is not a number"


def test_custom_constraints_ask_the_check() -> None:
    raw = declare(
        flavor={"type": "string", "constraints": [{"custom_constraint": "nova.flavor"}]},
        image={
            "type": "string",
            "default": "cirros",
            "constraints": [{"custom_constraint": "glance.image"}],
        },
        keys={
            "type": "comma_delimited_list",
            "default": "k1",
            "constraints": [{"custom_constraint": "nova.keypair"}],
        },
    )
    known = {("nova.flavor", "m1.small"), ("glance.image", "cirros"), ("nova.keypair", "k1")}
    asked: list[tuple[str, str]] = []

    def check(name: str, value: str) -> bool:
        asked.append((name, value))
        return (name, value) in known

    parse_template(raw).bind({"flavor": "m1.small"}, IDENTITY, check)
    assert sorted(asked) == sorted(known)
    e = bind_error(raw, {"flavor": "m1.huge"}, check)
    assert (e.path, e.message) == (
        "parameters.flavor",
        "parameter 'flavor' is invalid: the flavor 'm1.huge' could not be found",
    )
    # without a check (e.g. /validate with no lookups) custom constraints are not run
    parse_template(raw).bind({"flavor": "m1.huge"}, IDENTITY)


def test_an_unknown_custom_constraint_is_refused() -> None:
    e = refused(
        declare(n={"type": "string", "constraints": [{"custom_constraint": "neutron.network"}]})
    )
    assert (e.path, e.message) == (
        "parameters.n.constraints[0].custom_constraint",
        "custom constraint 'neutron.network' is not supported "
        "(supported: nova.flavor, glance.image, nova.keypair)",
    )


def test_parameter_declarations_are_checked() -> None:
    e = refused(declare(p={"type": "integer"}))
    assert (e.path, e.message) == (
        "parameters.p.type",
        "unknown type 'integer' (known: string, number, json, comma_delimited_list, boolean)",
    )
    e = refused(declare(p={"default": 1}))
    assert (e.path, e.message) == ("parameters.p", "a parameter needs a type")
    e = refused(declare(p={"type": "string", "hiden": True}))
    assert e.message.startswith("unknown key 'hiden' (allowed: type, description,")
    e = refused(declare("2017-09-01", p={"type": "string", "tags": ["a"]}))
    assert e.message.startswith("unknown key 'tags'")
    parse_template(declare("2018-03-02", p={"type": "string", "tags": ["a"], "default": ""}))


def test_parameter_infos_are_what_validate_shows() -> None:
    raw = declare(
        n={
            "type": "number",
            "default": 2,
            "label": "Count",
            "description": "how many",
            "constraints": [{"range": {"min": 1, "max": 5}, "description": "1 to 5"}],
        },
        pw={"type": "string", "hidden": True, "immutable": True},
    )
    infos = {p.name: p for p in parse_template(raw).parameter_infos()}
    n = infos["n"]
    assert (n.type, n.default, n.label, n.description, n.hidden) == (
        "Number",
        2,
        "Count",
        "how many",
        False,
    )
    assert n.constraints == [{"MinValue": 1, "MaxValue": 5, "ConstraintDescription": "1 to 5"}]
    assert (infos["pw"].hidden, infos["pw"].label, infos["pw"].default) == (True, "pw", None)


def test_shown_parameters_hide_hidden_ones_and_render_values() -> None:
    raw = declare(
        pw={"type": "string", "hidden": True, "default": "x"},
        l={"type": "comma_delimited_list", "default": "a,b"},
        j={"type": "json", "default": {"k": 1}},
        b={"type": "boolean", "default": True},
    )
    shown = parse_template(raw).bind({}, IDENTITY).shown_parameters()
    assert shown["pw"] == "******"
    assert (shown["l"], shown["j"], shown["b"]) == ("a,b", '{"k": 1}', "True")


def test_parameter_groups_are_checked() -> None:
    params = {"a": {"type": "string"}, "b": {"type": "string"}}
    groups = [{"label": "one", "parameters": ["a"]}, {"label": "two", "parameters": ["b"]}]
    assert (
        parse_template(hot(parameters=params, parameter_groups=groups)).parameter_groups() == groups
    )
    e = refused(hot(parameters=params, parameter_groups=[{"parameters": ["a", "zz"]}]))
    assert (e.path, e.message) == ("parameter_groups[0].parameters", "no parameter named 'zz'")
    e = refused(
        hot(parameters=params, parameter_groups=[{"parameters": ["a"]}, {"parameters": ["a"]}])
    )
    assert (e.path, e.message) == (
        "parameter_groups[1].parameters",
        "parameter 'a' is already in group 0",
    )


def test_backtracking_matches_share_one_budget_per_bind() -> None:
    # Many parameters (or list items) cannot each take the per-match limit: one parse or
    # bind of the parameters has PATTERN_BUDGET_SECONDS of backtracking in all.
    evil = compile_pattern("(?=a)(a+)+$")
    reasons: list[str] = []

    @pattern_budget
    def bind_many() -> None:
        for _ in range(20):
            try:
                evil.fullmatch("a" * 5000 + "!")
            except PatternTimeout as e:
                reasons.append(str(e))

    bind_many()
    assert reasons[0] == f"matching took longer than {limits.PATTERN_SECONDS} s"
    assert reasons[-1] == f"the template's patterns took {limits.PATTERN_BUDGET_SECONDS} s in all"
    assert len(reasons) == 20
    # Only the budget's worth ran to the per-match limit; the rest were refused at once.
    ran = [r for r in reasons if r.startswith("matching took")]
    assert len(ran) <= limits.PATTERN_BUDGET_SECONDS / limits.PATTERN_SECONDS + 1
