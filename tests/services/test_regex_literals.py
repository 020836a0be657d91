"""`required_literal`: text every match of a pattern contains, so `instr` may run first.

Checked against RE2 itself on random patterns and names: whenever RE2 finds a match, the
name contains the literal (a pre-filter that dropped a match would change the answer).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canopy.domain.errors import InvalidRequest
from canopy.services.regex import portable
from canopy.services.regex_literals import literal_search, required_literal
from canopy.store.regexp import search


@pytest.mark.parametrize(
    ("pattern", "literal"),
    [
        ("web", "web"),
        ("^web-4", "web-4"),
        ("web-\\d+", "web-"),
        ("ab*", "a"),  # b may be absent
        ("ab?cd", "cd"),
        ("x{2,5}yz", "yz"),  # the bound's digits are not text
        ("a{3}bc", "bc"),
        ("\\.com$", ".com"),  # an escaped metacharacter is itself
        ("[abc]def", "def"),
        ("q(?:x|y)rst", "rst"),
        ("web\\n", "web\n"),
        ("a|b", None),  # either side may match
        ("(web)", None),  # inside a group: not taken
        ("^.*$", None),
        ("", None),
    ],
)
def test_known_patterns(pattern: str, literal: str | None) -> None:
    assert required_literal(portable("name", pattern)) == literal


ATOMS = st.sampled_from(
    ["a", "b", "-", "\\.", ".", "[ab]", "[^a]", "\\d", "(?:a|b)", "(?:ab)", "^", "$", "|"]
)
QUANT = st.sampled_from(["", "", "", "*", "+", "?", "{2}", "{0,2}", "{1,}"])


@st.composite
def patterns(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.tuples(ATOMS, QUANT), max_size=8))
    out = []
    for atom, q in parts:
        out.append(atom + ("" if atom in ("^", "$", "|") else q))
    return "".join(out)


@settings(max_examples=600, deadline=None, derandomize=True)
@given(pattern=patterns(), names=st.lists(st.text(alphabet="ab-.1c", max_size=10), max_size=12))
def test_every_match_contains_the_literal(pattern: str, names: list[str]) -> None:
    try:
        canonical = portable("name", pattern)
    except InvalidRequest:
        return  # refused with a 400 before any query
    literal = required_literal(canonical)
    if literal is None:
        return
    for name in [*names, literal, "x" + literal + "y"]:
        if search(canonical, name):
            assert literal in name, (pattern, canonical, literal, name)


@pytest.mark.parametrize(
    ("pattern", "found"),
    [
        ("web-42", (False, "web-42")),
        ("^web-42", (True, "web-42")),
        ("web\\.1", (False, "web.1")),
        ("^web-42$", None),  # an exact name: exact_literal's
        ("web-4\\d", None),
        ("web.", None),
        ("a|b", None),
        ("^", None),
        ("web\\n", None),  # a control escape is not taken as literal text
    ],
)
def test_literal_search_is_only_plain_text(pattern: str, found: tuple[bool, str] | None) -> None:
    assert literal_search(portable("name", pattern)) == found
