"""Each HOT function's result, as Heat gives it, and its argument errors."""

from __future__ import annotations

import hashlib

import pytest

from canopy.orchestration.template import TemplateError

from .helpers import FakeResources, evaluate, one_output, refused

PARAMS = {
    "name": {"type": "string", "default": "web"},
    "cfg": {"type": "json", "default": {"a": {"b": [10, 20]}, "n": None}},
    "zones": {"type": "comma_delimited_list", "default": "az1,az2"},
    "port": {"type": "number", "default": 8080},
}


def ev(value: object, version: str = "2018-08-31", **kw: object) -> object:
    return evaluate(value, version, parameters=PARAMS, **kw)  # type: ignore[arg-type]


def err(value: object, version: str = "2018-08-31", **kw: object) -> TemplateError:
    with pytest.raises(TemplateError) as e:
        ev(value, version, **kw)
    return e.value


# get_param


def test_get_param_gives_the_typed_value() -> None:
    assert ev({"get_param": "port"}) == 8080
    assert ev({"get_param": "zones"}) == ["az1", "az2"]


def test_get_param_follows_a_path_into_json_and_lists() -> None:
    assert ev({"get_param": ["cfg", "a", "b", 1]}) == 20
    assert ev({"get_param": ["cfg", "a", "b", "0"]}) == 10
    assert ev({"get_param": ["zones", 1]}) == "az2"


def test_get_param_on_a_missing_path_gives_an_empty_string() -> None:
    assert ev({"get_param": ["cfg", "a", "missing"]}) == ""
    assert ev({"get_param": ["zones", 7]}) == ""


def test_get_param_of_an_undeclared_parameter_is_refused() -> None:
    e = refused(one_output({"get_param": "nope"}))
    assert (e.path, e.message) == ("outputs.out.value.get_param", "no parameter named 'nope'")


def test_get_param_reads_pseudo_parameters() -> None:
    assert ev({"get_param": "OS::stack_id"}) == "5f1c0b9e-stack"
    assert ev({"get_param": "OS::project_id"}) == "proj-1"
    assert ev({"get_param": "OS::stack_name"}) == "web"


# get_resource / get_attr


def test_get_resource_is_the_engine_reference() -> None:
    assert ev({"get_resource": "r"}, ctx=FakeResources(ids={"r": "uuid-1"})) == "uuid-1"
    assert ev({"get_resource": "r"}) is None  # not created yet


def test_get_attr_walks_a_path_and_a_missing_path_is_null() -> None:
    ctx = FakeResources(attrs={"r": {"addresses": {"net": [{"addr": "10.0.0.1"}]}}})
    assert ev({"get_attr": ["r", "addresses", "net", 0, "addr"]}, ctx=ctx) == "10.0.0.1"
    assert ev({"get_attr": ["r", "addresses", "other", 0]}, ctx=ctx) is None
    assert ev({"get_attr": ["r", "addresses", "net", 5]}, ctx=ctx) is None
    assert ctx.attribute_calls[0] == ("r", ["addresses"])


def test_get_attr_of_a_resource_alone_gives_every_attribute_from_2015_10_15() -> None:
    ctx = FakeResources(attrs={"r": {"a": 1}})
    assert ev({"get_attr": ["r"]}, ctx=ctx) == {"a": 1}
    assert ctx.attribute_calls == [("r", [])]
    e = refused(one_output({"get_attr": ["r"]}, "2015-04-30"))
    assert e.path == "outputs.out.value.get_attr"
    assert "[resource, attribute, path...]" in e.message


def test_get_attr_needs_a_list_naming_a_resource() -> None:
    e = refused(one_output({"get_attr": "r"}))
    assert e.message == "the argument must be [resource] or [resource, attribute, path...]"
    e = refused(one_output({"get_attr": ["nope", "x"]}))
    assert (e.path, e.message) == ("outputs.out.value.get_attr", "no resource named 'nope'")


# get_file


def test_get_file_reads_the_request_files() -> None:
    assert ev({"get_file": "init.sh"}, files={"init.sh": "#!/bin/sh\n"}) == "#!/bin/sh\n"
    e = refused(one_output({"get_file": "missing.sh"}))
    assert e.message == "no file 'missing.sh' in the request's files"


# str_replace and its strict forms


def test_str_replace_prefers_longer_keys_and_makes_null_empty() -> None:
    value = {
        "str_replace": {
            "template": "$a $ab $none $n",
            "params": {"$a": "x", "$ab": "y", "$none": None, "$n": 3},
        }
    }
    assert ev(value) == "x y  3"


def test_str_replace_substitutes_maps_and_lists_as_json_from_2015_10_15() -> None:
    value = {"str_replace": {"template": "v=V", "params": {"V": {"b": [1], "a": True}}}}
    assert ev(value) == 'v={"a": true, "b": [1]}'
    e = err(value, "2015-04-30")
    assert e.message == "param 'V' must be a string or a number"
    assert e.path == "outputs.out.value.str_replace"


def test_str_replace_does_not_substitute_into_substituted_values() -> None:
    value = {"str_replace": {"template": "AB", "params": {"A": "B", "B": "C"}}}
    assert ev(value) == "BC"


def test_str_replace_needs_template_and_params() -> None:
    e = refused(one_output({"str_replace": {"template": "x"}}))
    assert e.message == "the argument must be a map with 'template' and 'params'"


def test_str_replace_strict_wants_every_key_in_the_template() -> None:
    ok = {"str_replace_strict": {"template": "a-b", "params": {"a": "1", "b": "2"}}}
    assert ev(ok) == "1-2"
    bad = {"str_replace_strict": {"template": "a", "params": {"a": "1", "zz": "2"}}}
    assert err(bad).message == "params not found in the template: zz"
    e = refused(one_output(ok, "2016-10-14"))
    assert e.message == (
        "str_replace_strict is not available in heat_template_version 2016-10-14: "
        "it was introduced in heat_template_version 2017-02-24"
    )


def test_str_replace_vstrict_refuses_empty_values() -> None:
    bad = {"str_replace_vstrict": {"template": "a", "params": {"a": ""}}}
    assert err(bad).message == "the value of param 'a' is null or empty"
    ok = {"str_replace_vstrict": {"template": "a", "params": {"a": "x"}}}
    assert ev(ok, "2021-04-16") == "x"


# list_join


def test_list_join_joins_several_lists_and_json_encodes_collections() -> None:
    assert ev({"list_join": [", ", ["a", "b"], {"get_param": "zones"}]}) == "a, b, az1, az2"
    assert ev({"list_join": ["-", [{"k": 1}, ["x"], None]]}) == '{"k": 1}-["x"]-'


def test_list_join_before_2015_10_15_takes_one_list() -> None:
    assert ev({"list_join": ["-", ["a", "b"]]}, "2013-05-23") == "a-b"
    e = refused(one_output({"list_join": ["-", ["a"], ["b"]]}, "2015-04-30"))
    assert e.message == "the argument must be [delimiter, list]"


def test_list_join_refuses_a_non_list() -> None:
    assert err({"list_join": [",", {"get_param": "name"}]}).message == (
        "each list to join must be a list"
    )
    assert refused(one_output({"list_join": ","})).message == (
        "the argument must be [delimiter, list, ...]"
    )


# repeat


def test_repeat_makes_every_permutation() -> None:
    value = {
        "repeat": {
            "template": {"port": "<%p%>", "proto": "<%x%>"},
            "for_each": {"<%p%>": [80, 443], "<%x%>": ["tcp", "udp"]},
        }
    }
    assert ev(value) == [
        {"port": "80", "proto": "tcp"},
        {"port": "80", "proto": "udp"},
        {"port": "443", "proto": "tcp"},
        {"port": "443", "proto": "udp"},
    ]


def test_repeat_without_permutations_zips_equal_lists() -> None:
    value = {
        "repeat": {
            "template": "%a%=%b%",
            "for_each": {"%a%": ["x", "y"], "%b%": ["1", "2"]},
            "permutations": False,
        }
    }
    assert ev(value) == ["x=1", "y=2"]
    value["repeat"]["for_each"]["%b%"] = ["1"]  # type: ignore[index]
    assert err(value).message == "without permutations every for_each list must be as long"


def test_repeat_permutations_came_in_2017_09_01() -> None:
    value = {"repeat": {"template": "a", "for_each": {"a": ["b"]}, "permutations": True}}
    assert refused(one_output(value, "2017-02-24")).message == "unknown argument(s) permutations"


def test_repeat_over_a_map_iterates_its_keys_from_2016_10_14() -> None:
    value = {"repeat": {"template": "k=K", "for_each": {"K": {"get_param": "cfg"}}}}
    assert ev(value) == ["k=a", "k=n"]
    assert err(value, "2016-04-08").message == "the values of 'for_each' must be lists"


def test_repeat_output_is_bounded() -> None:
    big = [str(i) for i in range(200)]
    value = {"repeat": {"template": "a-b", "for_each": {"a": big, "b": big}}}
    assert err(value).message == "would make 40000 items (at most 10000)"


# digest


@pytest.mark.parametrize("algorithm", ["md5", "sha1", "sha224", "sha256", "sha384", "sha512"])
def test_digest_hashes_with_hashlib(algorithm: str) -> None:
    expected = hashlib.new(algorithm, b"hello").hexdigest()
    assert ev({"digest": [algorithm, "hello"]}) == expected


def test_digest_refuses_unknown_algorithms_and_huge_inputs() -> None:
    e = refused(one_output({"digest": ["crc32", "x"]}))
    assert (
        e.message == "unknown algorithm 'crc32' (known: md5, sha1, sha224, sha256, sha384, sha512)"
    )
    huge = {"str_replace": {"template": "X", "params": {"X": "a" * 1_000_001}}}
    assert err({"digest": ["sha256", huge]}).message == "the value to digest is longer than 1000000"


# str_split


def test_str_split_splits_and_indexes() -> None:
    assert ev({"str_split": [",", "a,b,c"]}) == ["a", "b", "c"]
    assert ev({"str_split": [",", "a,b,c", 2]}) == "c"
    assert ev({"str_split": [",", "a,b,c", "1"]}) == "b"
    assert err({"str_split": [",", "a,b", 5]}).message == "the index 5 is not between 0 and 1"
    assert (
        refused(one_output({"str_split": ["", "x"]})).message == "the delimiter must not be empty"
    )


# map_merge / map_replace


def test_map_merge_later_keys_win_and_null_is_empty() -> None:
    value = {"map_merge": [{"a": 1, "b": 2}, None, {"b": 3}]}
    assert ev(value) == {"a": 1, "b": 3}
    assert err({"map_merge": [{"a": 1}, "x"]}).message == 'the items to merge must be maps, not "x"'


def test_map_replace_renames_keys_and_replaces_values() -> None:
    value = {
        "map_replace": [{"k1": "v1", "k2": "v2"}, {"keys": {"k1": "K1"}, "values": {"v2": "V2"}}]
    }
    assert ev(value) == {"K1": "v1", "k2": "V2"}
    clash = {"map_replace": [{"a": 1, "b": 2}, {"keys": {"a": "b"}}]}
    assert err(clash).message == "key replacement 'b' collides with a key in the input map"


# filter, list_concat, list_concat_unique, contains, make_url


def test_filter_removes_values() -> None:
    assert ev({"filter": [[None, "b"], ["a", None, "b", "c"]]}) == ["a", "c"]
    assert ev({"filter": [None, ["a"]]}) == ["a"]


def test_list_concat_and_unique() -> None:
    assert ev({"list_concat": [["a", "b"], None, ["b"]]}) == ["a", "b", "b"]
    assert ev({"list_concat_unique": [["a", "b"], ["b", "c", "a"]]}) == ["a", "b", "c"]
    assert err({"list_concat": [["a"], "b"]}).message == (
        'items to concatenate must be lists, not "b"'
    )


def test_contains_tests_membership() -> None:
    assert ev({"contains": ["az2", {"get_param": "zones"}]}) is True
    assert ev({"contains": ["az9", ["az1"]]}) is False
    assert ev({"contains": ["eb", {"get_param": "name"}]}) is True  # a substring, as in Heat
    assert err({"contains": ["a", {"get_param": "port"}]}).message == (
        "the second argument must be a list or a string"
    )


def test_make_url_escapes_its_parts() -> None:
    value = {
        "make_url": {
            "scheme": "https",
            "username": "me@x",
            "password": "p/w",
            "host": "fe80::1",
            "port": 8443,
            "path": "/a b",
            "query": {"q": "1/2"},
            "fragment": "top",
        }
    }
    assert ev(value) == "https://me%40x:p%2Fw@[fe80::1]:8443/a%20b?q=1/2#top"
    assert refused(one_output({"make_url": {"port": 0}})).message == (
        "invalid port 0, must be in range 1-65535"
    )
    assert refused(one_output({"make_url": {"hots": "x"}})).message.startswith(
        "unknown argument(s) hots"
    )


# what Canopy refuses


def test_yaql_is_refused_by_name() -> None:
    e = refused(one_output({"yaql": {"expression": "1", "data": {}}}))
    assert e.message == (
        "yaql is not supported by Canopy: YAQL expressions are not evaluated "
        "(use the other functions)"
    )
    assert e.path == "outputs.out.value.yaql"


def test_resource_facade_is_refused_with_what_is_missing() -> None:
    """Template resources are supported; what is not is handing the nested template its
    parent resource's data, and the refusal says so (it said nested stacks were not
    supported)."""
    e = refused(one_output({"resource_facade": "metadata"}))
    assert e.message.startswith("resource_facade is not supported by Canopy: ")
    assert "parent resource's metadata, deletion_policy or update_policy" in e.message
    assert "nested stacks" not in e.message and "provider templates" not in e.message


def test_only_a_one_key_map_is_a_function_call() -> None:
    looks_like = {"get_attr": ["nope", "x"], "other": 1}
    assert ev(looks_like) == looks_like
    assert ev({"get_param": "name", "x": {"get_param": "name"}}) == {
        "get_param": "name",
        "x": "web",
    }


def test_an_unknown_one_key_map_is_data() -> None:
    assert ev({"Fn::Nothing": [1]}) == {"Fn::Nothing": [1]}
