"""domain/text.py: a decoded document's lone surrogates and NUL, named by where."""

from __future__ import annotations

import pytest

from canopy.domain.errors import InvalidRequest
from canopy.domain.text import check_text, text_problem


def test_the_first_bad_string_or_key_is_named_under_its_root() -> None:
    assert text_problem({"a": ["ok", {"b": "x\ud800"}]}, "template") == (
        "Invalid input for field/attribute template.a[1].b: it holds a lone surrogate (a "
        "\\uD800-\\uDFFF escape without its pair), which is not valid Unicode text."
    )
    assert text_problem({"a": {"k\x00": 1}}, "doc") == (
        "Invalid input for field/attribute doc.a (a key): NUL characters are not allowed."
    )
    assert text_problem("\x00", "value") == (
        "Invalid input for field/attribute value: NUL characters are not allowed."
    )


def test_good_text_and_paired_surrogates_pass() -> None:
    good = {"emoji": "\U0001f600", 1: ["é", None, 2.5], "nested": {"k": "v"}}
    assert text_problem(good, "template") is None
    check_text(good, "template")
    with pytest.raises(InvalidRequest):
        check_text(["\udfff"], "files.a.yaml")
