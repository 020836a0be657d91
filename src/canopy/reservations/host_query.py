"""Blazar's host queries (`hypervisor_properties`, `resource_properties`), parsed and matched.

A query is a JSON string: `["<op>", "$<field>", "<value>"]`, or `["and", q1, q2, ...]`
of such triples, or empty (`""` or `[]`: any host). The operators are Blazar's: `=`
(also `==`), `!=`, `<`, `<=`, `>`, `>=`. A field is one of the host's own
(`vcpus`, `memory_mb`, `local_gb`, `hypervisor_type`, `hypervisor_hostname`,
`service_name`, `cloud`, `availability_zone`) or one of its extra capabilities; a host
without the field never matches (as in Blazar). Values compare as numbers when both sides
are numbers, else as strings.

The text is bounded before it is parsed (length, terms, nesting): a user's query never
runs unbounded.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from canopy.domain.errors import InvalidRequest

MAX_TEXT = 4096
MAX_TERMS = 64
OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: bool(a == b),
    "==": lambda a, b: bool(a == b),
    "!=": lambda a, b: bool(a != b),
    "<": lambda a, b: bool(a < b),
    "<=": lambda a, b: bool(a <= b),
    ">": lambda a, b: bool(a > b),
    ">=": lambda a, b: bool(a >= b),
}


@dataclass(frozen=True, slots=True)
class Term:
    op: str
    field: str  # without the '$'
    value: str


Query = tuple[Term, ...]  # every term must hold (empty: any host)


def _malformed(field: str, why: str) -> InvalidRequest:
    return InvalidRequest(
        f"Malformed requirements in {field}: {why}. Expected a JSON string such as "
        '\'[">=", "$vcpus", "2"]\' or \'["and", [">=", "$vcpus", "2"], ["=", "$gpu", "True"]]\', '
        "or an empty string."
    )


def _term(raw: Any, field: str) -> Term:
    if not (isinstance(raw, list) and len(raw) == 3 and all(isinstance(x, str) for x in raw)):
        raise _malformed(field, f"{json.dumps(raw)[:80]} is not [op, $field, value] of strings")
    op, key, value = raw
    if op not in OPS:
        raise _malformed(field, f"unknown operator {op[:20]!r} (one of {', '.join(OPS)})")
    if len(key) < 2 or not key.startswith("$") or len(key) > 65:
        raise _malformed(field, f"{key[:70]!r} is not a $field name (1 to 64 characters)")
    if not value or len(value) > 255:
        raise _malformed(field, "a value is 1 to 255 characters")
    return Term(op, key[1:], value)


def parse(text: Any, field: str) -> Query:
    """The query in `text` (a JSON string, or already a list); 400 naming `field` if bad."""
    if text is None or text == "":
        return ()
    if isinstance(text, str):
        if len(text) > MAX_TEXT:
            raise _malformed(field, f"longer than {MAX_TEXT} characters")
        try:
            raw = json.loads(text)
        except (ValueError, RecursionError):
            raise _malformed(field, "not valid JSON") from None
    elif isinstance(text, list):
        raw = text
        if len(json.dumps(raw)) > MAX_TEXT:
            raise _malformed(field, f"longer than {MAX_TEXT} characters")
    else:
        raise _malformed(field, "not a string")
    if raw == []:
        return ()
    if isinstance(raw, list) and raw and raw[0] == "and":
        terms = raw[1:]
        if not terms:
            raise _malformed(field, "'and' needs at least one term")
        if len(terms) > MAX_TERMS:
            raise _malformed(field, f"at most {MAX_TERMS} terms")
        return tuple(_term(t, field) for t in terms)
    return (_term(raw, field),)


def text(raw: Any) -> str:
    """The query as stored and shown: the text the user sent ('' for none)."""
    if raw is None:
        return ""
    return raw if isinstance(raw, str) else json.dumps(raw)


def _number(v: str) -> float | None:
    try:
        n = float(v)
    except ValueError:
        return None
    return n if math.isfinite(n) else None


def holds(term: Term, fields: Mapping[str, Any]) -> bool:
    """Whether a host with these fields satisfies `term` (a missing field: no)."""
    if term.field not in fields or fields[term.field] is None:
        return False
    have = str(fields[term.field])
    a, b = _number(have), _number(term.value)
    if a is not None and b is not None:
        return OPS[term.op](a, b)
    if have.lower() in ("true", "false") and term.value.lower() in ("true", "false"):
        return OPS[term.op](have.lower(), term.value.lower())
    return OPS[term.op](have, term.value)


def matches(query: Query, fields: Mapping[str, Any]) -> bool:
    return all(holds(t, fields) for t in query)
