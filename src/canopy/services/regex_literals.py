"""Literal text every match of a canonical pattern must contain: a cheap pre-filter.

`openstack server list --name web` sends `web`, a regular expression searched anywhere in
the name. No B-tree index can answer "contains", so SQLite visits every server of the
project; what it does per row is what costs. RE2 behind `REGEXP` is a Python call per row
(about 1.7 us), where SQLite's own `instr()` is a C loop (about 0.2 us). Every match of
`web-\\d+` contains `web-`, so `instr(name, 'web-') > 0` may run first and the pattern only
on the rows it keeps: the answer is the same, found several times faster.

Only what is certain is taken: a run of plain characters at the top level of a pattern
with no top-level alternation, none of them under a quantifier (`ab*` requires `a`, not
`ab`). Anything else (a group, a class, `.`, an escape this module does not know) ends
the run; a pattern with no such run gets no pre-filter.
"""

from __future__ import annotations

# What the canonical form (services.regex) escapes to stand for itself, and its controls.
_META = frozenset("\\.^$|?*+()[]{}")
_CONTROL = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v"}
_QUANTIFIERS = frozenset("*+?{")


def required_literal(canonical: str) -> str | None:
    """The longest text every match of `canonical` contains, or None if none is certain."""
    best = max(required_literals(canonical), key=len, default="")
    return best or None


def required_literals(canonical: str) -> list[str]:
    """Every text found certain in `canonical`: each match contains all of them (none
    when nothing is certain)."""
    runs: list[str] = []
    run: list[str] = []
    depth = 0
    i, n = 0, len(canonical)

    def end_run() -> None:
        if run:
            runs.append("".join(run))
            run.clear()

    while i < n:
        c = canonical[i]
        if c == "\\":
            if i + 1 >= n:
                return []
            e = canonical[i + 1]
            char = e if e in _META else _CONTROL.get(e)
            i += 2
            if char is None:  # not a plain character: ends the run
                end_run()
                continue
            _add(run, runs, char, canonical, i, depth)
            continue
        if c == "[":
            i = _after_class(canonical, i)
            if i < 0:
                return []
            end_run()
            continue
        if c == "(":
            depth += 1
            end_run()
            i += 1
            continue
        if c == ")":
            depth -= 1
            end_run()
            i += 1
            continue
        if c == "|":
            if depth == 0:
                return []  # either side may match: nothing is certain
            i += 1
            continue
        if c == "{":  # a bound {n}, {n,} or {n,m} (a literal brace is escaped)
            end = canonical.find("}", i)
            if end < 0:
                return []
            end_run()
            i = end + 1
            continue
        if c in _QUANTIFIERS or c in ".^$":
            end_run()
            i += 1
            continue
        i += 1
        _add(run, runs, c, canonical, i, depth)
    end_run()
    return [r for r in runs if r]


def _add(run: list[str], runs: list[str], char: str, text: str, after: int, depth: int) -> None:
    """Append `char` (whose atom ends at `after`) to the run if it is certain to appear."""
    if depth > 0:
        return  # inside a group: the group may repeat, be optional or alternate
    if after < len(text) and text[after] in _QUANTIFIERS:
        # `ab*`, `ab?`, `ab{0,2}`: the quantified character is not certain, and the run
        # cannot continue past it.
        if run:
            runs.append("".join(run))
            run.clear()
        return
    run.append(char)


def _after_class(text: str, i: int) -> int:
    """The index just after the bracket expression starting at `i` (-1 if unterminated)."""
    j = i + 1
    while j < len(text):
        if text[j] == "\\":
            j += 2
            continue
        if text[j] == "]":
            return j + 1
        j += 1
    return -1


_SPECIAL = frozenset(".^$*+?{}[]()|\\")


def exact_literal(canonical: str) -> str | None:
    """The one text a canonical pattern matches, when it is `^literal$`; else None.

    Such a pattern (what `openstack server list --name '^web-42$'` sends) is answered by
    the (project_id, name, deleted) index with an equality beside the pattern; the
    pattern stays in the query, so the answer is the same either way.
    """
    if len(canonical) < 2 or canonical[0] != "^" or canonical[-1] != "$":
        return None
    return _plain(canonical[1:-1])


def literal_search(canonical: str) -> tuple[bool, str] | None:
    """(anchored at the start, text) when a canonical pattern is only literal text,
    searched anywhere (`web-42`, what `openstack server show web-42` sends) or at the
    start (`^web-42`): then "matches" is "contains the text" (or "starts with it"),
    exactly, and SQLite's own `instr` answers it without a regular expression."""
    anchored = canonical.startswith("^")
    body = canonical[1:] if anchored else canonical
    text_ = _plain(body)
    if not text_:
        return None
    return anchored, text_


def _plain(body: str) -> str | None:
    """The text `body` (a canonical pattern without anchors) stands for, if it is only
    literal characters; else None."""
    out, i = [], 0
    while i < len(body):
        c = body[i]
        if c == "\\":
            if i + 1 >= len(body) or body[i + 1] not in _SPECIAL:
                return None  # an escape that is not a plain metacharacter
            out.append(body[i + 1])
            i += 2
            continue
        if c in _SPECIAL:
            return None
        out.append(c)
        i += 1
    return "".join(out)
