"""Blazar's host query syntax: parsed with bounds, matched against a host's fields."""

from __future__ import annotations

import json
import time

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


def test_huge_and_deep_queries_are_refused_quickly() -> None:
    t = time.perf_counter()
    for query in (
        "[" * 1_000_000,  # past the length bound: never parsed
        "[" * 2000 + "]" * 2000,  # within it, but deeper than the parser recurses
        json.dumps(["and", *[["=", f"$k{i}", "v"] for i in range(MAX_TERMS + 1)]]),
    ):
        with pytest.raises(InvalidRequest):
            parse(query, "resource_properties")
    assert time.perf_counter() - t < 1.0
    many = json.dumps(["and", *[["=", f"$k{i}", "v"] for i in range(MAX_TERMS)]])
    assert len(parse(many, "resource_properties")) == MAX_TERMS
