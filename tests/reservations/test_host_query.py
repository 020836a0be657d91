"""Blazar's host query syntax: parsed with bounds, matched against a host's fields."""

from __future__ import annotations

import json
import re

import pytest

from canopy.domain.errors import InvalidRequest
from canopy.reservations.host_query import MAX_TERMS, Term, matches, parse

HOST = {"vcpus": 8, "memory_mb": 16384, "gpu": "True", "rack": "r10", "cloud": "private"}


@pytest.mark.parametrize(
    ("query", "hit"),
    [
        ("", True),
        ("[]", True),
        ('["=", "$vcpus", "8"]', True),
        ('["==", "$vcpus", "8.0"]', True),  # numbers compare as numbers
        ('[">=", "$vcpus", "10"]', False),  # not as text ("8" > "10")
        ('["<", "$memory_mb", "32768"]', True),
        ('["!=", "$cloud", "public"]', True),
        ('["=", "$gpu", "true"]', True),  # booleans whatever their case
        ('["=", "$rack", "r10"]', True),
        ('[">", "$rack", "r9"]', False),  # text compares as text
        ('["=", "$missing", "x"]', False),  # a host without the field never matches
        ('["!=", "$missing", "x"]', False),
        ('["and", [">=", "$vcpus", "2"], ["=", "$gpu", "True"]]', True),
        ('["and", [">=", "$vcpus", "2"], ["=", "$gpu", "False"]]', False),
    ],
)
def test_matching(query: str, hit: bool) -> None:
    assert matches(parse(query, "q"), HOST) is hit


def test_parsed_terms() -> None:
    assert parse('["=", "$gpu", "True"]', "q") == (Term("=", "gpu", "True"),)
    assert parse(["and", ["<", "$a", "1"]], "q") == (Term("<", "a", "1"),)


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ("[>=", "not valid JSON"),
        ("{}", "is not [op, $field, value]"),
        ('"x"', "is not [op, $field, value]"),
        ('["like", "$a", "b"]', "unknown operator"),
        ('["=", "a", "b"]', "is not a $field name"),
        ('["=", "$", "b"]', "is not a $field name"),
        ('["=", "$a", ""]', "a value is 1 to 255"),
        ('["=", "$a", 1]', "is not [op, $field, value]"),
        ('["or", ["=", "$a", "1"], ["=", "$b", "2"]]', "is not [op, $field, value]"),
        ('["and", ["and", ["=", "$a", "1"]]]', "is not [op, $field, value]"),
        ('["and"]', "'and' needs at least one term"),
        (7, "not a string"),
    ],
)
def test_malformed_queries_are_400_naming_the_field(query: object, said: str) -> None:
    malformed = "Malformed requirements in hypervisor_properties"
    with pytest.raises(InvalidRequest, match=malformed) as e:
        parse(query, "hypervisor_properties")
    assert said in str(e.value)


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ("[" * 1_000_000, "longer than 4096 characters"),  # never handed to the parser
        (["and", *[["=", "$k", "v" * 200]] * 100], "longer than 4096 characters"),
        ("[" * 2000 + "]" * 2000, "not valid JSON"),  # deeper than the parser recurses
        (
            json.dumps(["and", *[["=", f"$k{i}", "v"] for i in range(MAX_TERMS + 1)]]),
            f"at most {MAX_TERMS} terms",
        ),
    ],
)
def test_huge_and_deep_queries_are_refused_by_their_bounds(query: object, said: str) -> None:
    # Each is refused by the bound named in its message, before any work that grows with it
    # (no wall-clock limit here: CI's machine is shared, and the bounds are what matter).
    with pytest.raises(InvalidRequest, match=re.escape(said)):
        parse(query, "resource_properties")


def test_the_most_terms_allowed_parse() -> None:
    many = json.dumps(["and", *[["=", f"$k{i}", "v"] for i in range(MAX_TERMS)]])
    assert len(parse(many, "resource_properties")) == MAX_TERMS
