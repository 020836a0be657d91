"""Template versions, their release names, and which functions each one has."""

from __future__ import annotations

import pytest

from canopy.orchestration.template import (
    TemplateError,
    parse_template,
    template_functions,
    template_versions,
)

from .helpers import evaluate, one_output, refused

DATES = [
    "2013-05-23", "2014-10-16", "2015-04-30", "2015-10-15", "2016-04-08", "2016-10-14",
    "2017-02-24", "2017-09-01", "2018-03-02", "2018-08-31", "2021-04-16",
]  # fmt: skip


def test_template_versions_lists_cfn_and_every_hot_version_with_aliases() -> None:
    versions = template_versions()
    assert versions[0] == {
        "version": "AWSTemplateFormatVersion.2010-09-09",
        "type": "cfn",
        "aliases": [],
    }
    assert [v["version"] for v in versions[1:]] == [f"heat_template_version.{d}" for d in DATES]
    by_key = {v["version"]: v for v in versions}
    assert by_key["heat_template_version.2018-08-31"] == {
        "version": "heat_template_version.2018-08-31",
        "type": "hot",
        "aliases": ["rocky"],
    }
    assert by_key["heat_template_version.2021-04-16"]["aliases"] == ["wallaby"]
    assert by_key["heat_template_version.2013-05-23"]["aliases"] == []


@pytest.mark.parametrize(
    ("alias", "date"),
    [
        ("newton", "2016-10-14"),
        ("ocata", "2017-02-24"),
        ("pike", "2017-09-01"),
        ("queens", "2018-03-02"),
        ("rocky", "2018-08-31"),
        ("wallaby", "2021-04-16"),
    ],
)
def test_release_names_are_versions(alias: str, date: str) -> None:
    template = parse_template({"heat_template_version": alias})
    assert (template.kind, template.version) == ("hot", date)


@pytest.mark.parametrize("date", DATES)
def test_every_date_parses(date: str) -> None:
    assert parse_template({"heat_template_version": date}).version == date


def test_an_unknown_version_is_refused_with_the_known_ones() -> None:
    e = refused({"heat_template_version": "2019-01-01"})
    assert e.path == "heat_template_version"
    assert e.message.startswith("unknown version '2019-01-01' (known: 2013-05-23, ")
    assert "2021-04-16 (wallaby)" in e.message
    e = refused({"AWSTemplateFormatVersion": "2011-01-01", "Resources": {}})
    assert (e.path, e.message) == (
        "AWSTemplateFormatVersion",
        "unknown version '2011-01-01' (known: 2010-09-09)",
    )
    e = refused({"resources": {}})
    assert e.message.startswith("the template version is not given")


def test_template_functions_lists_each_versions_functions() -> None:
    names = {f["functions"] for f in template_functions("heat_template_version.2013-05-23")}
    assert {"get_param", "get_attr", "str_replace", "list_join", "Fn::Join", "Ref"} <= names
    assert "repeat" not in names
    wallaby = template_functions("heat_template_version.wallaby")
    names = {f["functions"] for f in wallaby}
    assert {"if", "filter", "make_url", "list_concat_unique", "str_replace_vstrict"} <= names
    assert "Fn::Select" not in names
    assert all(f["description"] for f in wallaby)
    cfn = {f["functions"] for f in template_functions("AWSTemplateFormatVersion.2010-09-09")}
    assert {"Ref", "Fn::GetAtt", "Fn::If", "Fn::FindInMap", "Fn::Base64"} <= cfn
    with pytest.raises(TemplateError) as e:
        template_functions("heat_template_version.1999-01-01")
    assert e.value.message == "unknown template version 'heat_template_version.1999-01-01'"


@pytest.mark.parametrize(
    ("function", "args", "since"),
    [
        ("repeat", {"template": "a", "for_each": {"a": ["b"]}}, "2015-04-30"),
        ("digest", ["md5", "a"], "2015-04-30"),
        ("str_split", [",", "a"], "2015-10-15"),
        ("map_merge", [{}], "2016-04-08"),
        ("map_replace", [{}, {}], "2016-10-14"),
        ("filter", [[], []], "2017-02-24"),
        ("make_url", {"host": "a"}, "2017-09-01"),
        ("list_concat", [[]], "2017-09-01"),
        ("contains", ["a", []], "2017-09-01"),
    ],
)
def test_a_function_before_its_version_names_the_version_that_brought_it(
    function: str, args: object, since: str
) -> None:
    before = DATES[DATES.index(since) - 1]
    e = refused(one_output({function: args}, before))
    assert e.path == f"outputs.out.value.{function}"
    assert e.message == (
        f"{function} is not available in heat_template_version {before}: "
        f"it was introduced in heat_template_version {since}"
    )
    parse_template(one_output({function: args}, since))


def test_cfn_functions_in_hot_went_away_in_2014_10_16() -> None:
    assert evaluate({"Fn::Join": ["-", ["a", "b"]]}, "2013-05-23") == "a-b"
    e = refused(one_output({"Fn::Join": ["-", ["a"]]}, "2014-10-16"))
    assert e.message == (
        "Fn::Join is not available in heat_template_version 2014-10-16: "
        "it was removed in heat_template_version 2014-10-16"
    )
    assert evaluate({"Fn::Select": [1, ["a", "b"]]}, "2015-04-30") == "b"
    e = refused(one_output({"Fn::Select": [1, ["a"]]}, "2015-10-15"))
    assert e.message.endswith("it was removed in heat_template_version 2015-10-15")


def test_if_may_omit_its_false_value_from_wallaby() -> None:
    conditions = {"no": False}
    value = {"keep": 1, "drop": {"if": ["no", "x"]}, "list": ["a", {"if": ["no", "b"]}]}
    assert evaluate(value, "2021-04-16", conditions=conditions) == {"keep": 1, "list": ["a"]}
    e = refused(one_output({"if": ["no", "x"]}, "2018-08-31", conditions=conditions))
    assert e.message == "the argument must be [condition, value_if_true, value_if_false]"


def test_functions_are_described_in_heats_words_for_each_version() -> None:
    """Heat lists each function class's first docstring line; clients and Heat's own API
    tests read it (heat-tempest-plugin's templates gabbit matches get_file's)."""

    def said(version: str, **kw: bool) -> dict[str, str]:
        return {f["functions"]: f["description"] for f in template_functions(version, **kw)}

    newest = said("heat_template_version.2016-04-08")
    assert newest["get_file"] == "A function for including a file inline."
    assert newest["list_join"] == "A function for joining one or more lists of strings."
    assert newest["repeat"] == "A function for iterating over a list of items."
    older = said("heat_template_version.2014-10-16")
    assert older["list_join"] == "A function for joining strings."
    assert said("heat_template_version.wallaby")["repeat"].endswith("or a dict of keys.")
    cfn = "AWSTemplateFormatVersion.2010-09-09"
    assert said(cfn)["Ref"] == "A function for resolving parameters or resource references."
    assert said(cfn, with_condition=True)["Ref"] == (
        "A function for resolving parameter references."
    )
