"""`locate`: the line of a key in TOML text, from a pydantic error location."""

from __future__ import annotations

import tomllib

import pytest

from canopy.config import locate

COMMENTED = """\
# [[clouds]]   a comment that looks like a header
data_dir = "x"  # tier = 9
# name = "zzz"

[[clouds]]  # first
name = "a"
[clouds.sim]
hosts = 1

[[clouds]]
"name" = "b"
tier = 1 # trailing comment
[clouds.sim]
# hosts = 3
hosts = 4
"""


def test_the_text_is_valid_toml() -> None:
    # The fixtures below are real TOML, so `locate` is tested on what operators write.
    for text in (COMMENTED, AOT, NESTED_ARRAY, QUOTED):
        tomllib.loads(text)


@pytest.mark.parametrize(
    ("loc", "line"),
    [
        (("data_dir",), 2),
        (("clouds", 0, "name"), 6),
        (("clouds", 0, "sim", "hosts"), 8),
        (("clouds", 1, "name"), 11),  # a quoted key
        (("clouds", 1, "tier"), 12),  # a trailing comment
        (("clouds", 1, "sim", "hosts"), 15),  # not the commented-out line 14
        (("clouds", 1), 10),  # the entry itself
        (("clouds", 1, "sim"), 13),
    ],
)
def test_comments_are_not_keys_or_headers(loc: tuple[object, ...], line: int) -> None:
    assert locate(COMMENTED, loc) == line


def test_a_missing_key_falls_back_to_its_innermost_table() -> None:
    assert locate(COMMENTED, ("clouds", 1, "sim", "nothere")) == 13
    assert locate(COMMENTED, ("clouds", 0, "flavor_map", "m1.tiny")) == 5
    assert locate(COMMENTED, ("clouds", 2, "name")) is None  # no third entry, no top key


def test_nothing_to_point_at() -> None:
    assert locate("", ("clouds", 0)) is None
    assert locate("# only a comment\n", ("api", "port")) is None
    assert locate("[api]\nport = 1\n", ()) is None


def test_a_key_whose_name_prefixes_another() -> None:
    text = "[scheduler]\nmax_attempts = 3\nmax_spend_per_hour = 5.0\n"
    assert locate(text, ("scheduler", "max_spend_per_hour")) == 3
    assert locate(text, ("scheduler", "max_attempts")) == 2


def test_dotted_keys() -> None:
    text = 'data_dir = "x"\nscheduler.burst_threshold = 2\napi.port = 1\n'
    assert locate(text, ("scheduler", "burst_threshold")) == 2
    assert locate(text, ("api", "port")) == 3


AOT = """\
[[clouds]]
name = "a"
[[clouds.extra]]
x = 1
[[clouds.extra]]
x = 2
[[clouds]]
name = "b"
[[clouds.extra]]
x = 3
"""


def test_nested_arrays_of_tables_count_per_parent() -> None:
    assert locate(AOT, ("clouds", 0, "extra", 0, "x")) == 4
    assert locate(AOT, ("clouds", 0, "extra", 1, "x")) == 6
    # A new [[clouds]] entry restarts the count of its [[clouds.extra]] entries.
    assert locate(AOT, ("clouds", 1, "extra", 0, "x")) == 10
    assert locate(AOT, ("clouds", 1, "name")) == 8


def test_headers_with_spaces() -> None:
    text = '[ scheduler ]\nmax_attempts = 0\n[[ clouds ]]\nname = "a"\n'
    assert locate(text, ("scheduler", "max_attempts")) == 2
    assert locate(text, ("clouds", 0, "name")) == 4


NESTED_ARRAY = """\
[[images]]
name = "x"
tags = [
  ["a", "b"],
  ["c"]
]
id = 5
"""


def test_nested_arrays_with_trailing_commas() -> None:
    text = '[[images]]\nname = "x"\ntags = [\n  ["a", "b"],\n  ["c"],\n]\nid = 5\n'
    tomllib.loads(text)
    assert locate(text, ("images", 0, "id")) == 7


def test_nested_array_element_is_not_a_header() -> None:
    assert locate(NESTED_ARRAY, ("images", 0, "id")) == 7


def test_multiline_string_content_is_not_a_header() -> None:
    text = '[[clouds]]\nname = "a"\nnote = """\n[not.a.header]\n"""\ntier = "x"\n'
    tomllib.loads(text)
    assert locate(text, ("clouds", 0, "tier")) == 6


QUOTED = """\
[[clouds]]
name = "private"
[clouds.flavor_map]
"m1.tiny" = "t3.nano"
'm1.small' = 3
"aws-us-east-1" = "x"
"""


def test_quoted_key_without_dots() -> None:
    assert locate(QUOTED, ("clouds", 0, "flavor_map", "aws-us-east-1")) == 6


def test_quoted_header_segments() -> None:
    text = '["scheduler"]\nmax_attempts = 0\n[[images]]\nname = "u"\n[images."map"]\nx = 1\n'
    tomllib.loads(text)
    assert locate(text, ("scheduler", "max_attempts")) == 2
    assert locate(text, ("images", 0, "map", "x")) == 6


def test_quoted_key_containing_dots() -> None:
    assert locate(QUOTED, ("clouds", 0, "flavor_map", "m1.small")) == 5
    assert locate(QUOTED, ("clouds", 0, "flavor_map", "m1.tiny")) == 4


def test_single_quoted_header_segment() -> None:
    text = "[scheduler]\n[clouds.'sim']\nhosts = 2\n"
    tomllib.loads(text)
    assert locate(text, ("clouds", "sim", "hosts")) == 3
