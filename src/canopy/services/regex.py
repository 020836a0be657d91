"""The one regular-expression dialect of the server filters `name`, `ip` and `ip6`.

Nova treats these filters as regular expressions searched anywhere in the value. Canopy
runs them in the database: RE2 behind SQLite's REGEXP (`canopy.store.regexp`), `~` on
PostgreSQL (its "advanced" regular expressions). The two engines read many patterns
differently (`\\b` is a word boundary in RE2 and a backspace in PostgreSQL; `\\w` and `.`
differ on non-ASCII text and newlines; `(?P<n>...)` or `(?a)` is an error in one), so a
pattern is parsed here into the subset both read alike, refused with a 400 if it steps
outside, and written out again in a canonical form that leaves nothing to interpretation:
shorthand classes spelled out in ASCII, every group non-capturing, metacharacters escaped.
Both databases then get that same text. docs/openstack-api.md lists the dialect.

`execute` runs a statement carrying such a pattern under a time limit: on PostgreSQL,
whose engine can take seconds to compile some patterns, and on SQLite, where RE2 is linear
in each name but a pattern no index answers is tested on every row of a project, on the
event loop (store/regexp.time_limit).
"""

from __future__ import annotations

import string
from typing import Any, NoReturn

from sqlalchemy.engine import Result
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql import Executable, text

from canopy.domain.errors import InvalidRequest
from canopy.store.regexp import PatternError, TooSlow, compile_pattern, time_limit

MAX_LENGTH = 1024  # characters of a pattern
MAX_REPEAT = 255  # the largest bound in {n,m}: PostgreSQL's limit
# A pattern, with each counted repetition written out (x{2,5} as five x), has at most
# this many elements: PostgreSQL expands bounds when it compiles, and its compile time
# grows fast past this (hundreds of ms at the limit, seconds beyond).
MAX_SIZE = 256
MAX_DEPTH = 32  # nested groups

# Characters that must be escaped to stand for themselves.
_META = frozenset("\\.^$|?*+()[]{}")
_CLASS_META = frozenset("\\[]^-")
_CONTROL = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v"}
_CONTROL_ESCAPE = {v: "\\" + k for k, v in _CONTROL.items()}
# Shorthand classes, in ASCII (what RE2 means; PostgreSQL's follow the locale).
_SHORTHAND = {"d": "0-9", "w": "0-9A-Za-z_", "s": "\\t\\n\\v\\f\\r "}
_PUNCTUATION = frozenset(string.punctuation)

_REFUSED_ESCAPES = {
    "b": "\\b (a word boundary in some engines, a backspace in others) is not supported",
    "B": "\\B (not a word boundary) is not supported",
    "A": "\\A is not supported: use ^",
    "z": "\\z is not supported: use $",
    "Z": "\\Z is not supported: use $",
    "p": "Unicode classes (\\p{...}) are not supported",
    "P": "Unicode classes (\\P{...}) are not supported",
    "x": "\\x escapes are not supported: write the character itself",
    "u": "\\u escapes are not supported: write the character itself",
    "Q": "\\Q...\\E quoting is not supported: escape each metacharacter with \\",
}


def portable(field: str, pattern: str) -> str:
    """`pattern` in the canonical portable form, or InvalidRequest saying what is wrong.

    The result means the same on SQLite (RE2) and PostgreSQL, and both accept it."""
    if len(pattern) > MAX_LENGTH:
        raise InvalidRequest(
            f"Invalid regular expression for {field}: longer than {MAX_LENGTH} characters."
        )
    parser = _Parser(field, pattern)
    canonical = parser.parse()
    try:
        compile_pattern(canonical)
    except PatternError as e:
        raise InvalidRequest(f"Invalid regular expression for {field}: {e}.") from None
    return canonical


def too_slow(limit_seconds: float) -> str:
    return (
        f"The regular expression filter took longer than {limit_seconds:g} s to evaluate "
        "and was stopped; use a simpler pattern."
    )


async def execute(
    s: AsyncSession,
    statement: Executable,
    limit_seconds: float | None,
    params: dict[str, Any] | None = None,
    *,
    core: bool = False,
) -> Result[Any]:
    """Run `statement` (which carries a user's pattern when `limit_seconds` is set): on
    PostgreSQL under that `statement_timeout`, turning a cancelled statement or a pattern
    the database refuses into a 400. With `core`, on the session's connection: plain
    rows, none of the ORM's result handling (for a select of columns)."""
    runner: AsyncSession | AsyncConnection = (await s.connection()) if core else s
    dialect = s.get_bind().dialect.name
    if limit_seconds is not None and dialect == "sqlite":
        raw = await (await s.connection()).get_raw_connection()
        # The inline aiosqlite connection (store/sqlite_inline.py) around sqlite3's.
        conn = raw.driver_connection._connection  # type: ignore[union-attr]
        try:
            with time_limit(conn, limit_seconds):
                return await runner.execute(statement, params)
        except TooSlow:
            raise InvalidRequest(too_slow(limit_seconds)) from None
    if limit_seconds is None or dialect != "postgresql":
        return await runner.execute(statement, params)
    ms = max(1, round(limit_seconds * 1000))
    await s.execute(text(f"SET LOCAL statement_timeout = {ms}"))
    try:
        result = await runner.execute(statement, params)
    except DBAPIError as e:
        code = getattr(e.orig, "sqlstate", None)
        if code == "57014":  # query_canceled: our timeout
            raise InvalidRequest(too_slow(limit_seconds)) from None
        if code == "2201B":  # invalid_regular_expression (e.g. "too complex")
            raise InvalidRequest(
                f"Invalid regular expression: the database refused it ({e.orig})."
            ) from None
        raise
    await s.execute(text("SET LOCAL statement_timeout TO DEFAULT"))
    return result


class _Parser:
    """A recursive-descent reader of the portable dialect that writes the canonical form.

    regex := branch ('|' branch)* ; branch := (atom quantifier?)* ;
    quantifier := ('*' | '+' | '?' | '{n}' | '{n,}' | '{n,m}') '?'?
    """

    def __init__(self, field: str, pattern: str) -> None:
        self.field = field
        self.p = pattern
        self.i = 0
        self.depth = 0

    def fail(self, why: str) -> NoReturn:
        raise InvalidRequest(
            f"Invalid regular expression for {self.field} at position {self.i}: {why}. "
            "See the supported syntax in Canopy's docs/openstack-api.md."
        )

    def peek(self, ahead: int = 0) -> str:
        j = self.i + ahead
        return self.p[j] if j < len(self.p) else ""

    def parse(self) -> str:
        out, size = self.alternation()
        if self.i < len(self.p):  # only a ')' stops the top level early
            self.fail("unbalanced ')'")
        if size > MAX_SIZE:
            self.fail(
                f"too complex: with counted repetitions written out it has {size} elements "
                f"(at most {MAX_SIZE})"
            )
        return out

    def alternation(self) -> tuple[str, int]:
        branch, size = self.branch()
        parts = [branch]
        while self.peek() == "|":
            self.i += 1
            branch, more = self.branch()
            parts.append(branch)
            size += more
        return "|".join(parts), size

    def branch(self) -> tuple[str, int]:
        out: list[str] = []
        size = 0
        while self.i < len(self.p) and self.peek() not in "|)":
            atom, atom_size, repeatable = self.atom()
            quantifier, times = self.quantifier()
            if quantifier and not repeatable:
                self.fail("nothing to repeat before the quantifier")
            out.append(atom + quantifier)
            size += atom_size * times
        return "".join(out), size

    def atom(self) -> tuple[str, int, bool]:
        """(canonical text, size, whether a quantifier may follow)."""
        c = self.p[self.i]
        if c == "(":
            return self.group()
        if c == "[":
            return self.bracket(), 1, True
        if c in "^$":
            self.i += 1
            return c, 0, False
        if c == ".":
            self.i += 1
            return ".", 1, True
        if c == "\\":
            return self.escape()
        if c in "*+?":
            self.fail(f"nothing to repeat before '{c}'")
        if c == "{":
            self.fail("a '{' must start a bound {n}, {n,} or {n,m}; write a literal '{' as \\{")
        self.i += 1
        return _literal(self.char(c)), 1, True

    def char(self, c: str) -> str:
        if c == "\x00":
            self.fail("NUL characters are not allowed")
        return c

    def group(self) -> tuple[str, int, bool]:
        if self.peek(1) == "?":
            if self.peek(2) != ":":
                self.fail(
                    "only (...) and (?:...) groups are supported: no flags, named groups or "
                    "look-around"
                )
            self.i += 3
        else:
            self.i += 1
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.fail(f"groups nested deeper than {MAX_DEPTH}")
        inner, size = self.alternation()
        if self.peek() != ")":
            self.fail("missing ')'")
        self.i += 1
        self.depth -= 1
        return f"(?:{inner})", size, True

    def quantifier(self) -> tuple[str, int]:
        """(canonical quantifier, how many times it writes its atom out)."""
        c = self.peek()
        if c in ("*", "+", "?"):
            self.i += 1
            text_, times = c, 1
        elif c == "{":
            text_, times = self.bound()
        else:
            return "", 1
        if self.peek() == "?":  # lazy: the same yes/no answer, so dropped
            self.i += 1
        if self.peek() in ("*", "+", "?", "{"):
            self.fail("a quantifier cannot follow another (no possessive or stacked quantifiers)")
        return text_, times

    def bound(self) -> tuple[str, int]:
        start = self.i
        self.i += 1
        low = self.number()
        high: int | None = low
        if self.peek() == ",":
            self.i += 1
            high = self.number() if self.peek().isdigit() else None
        if low is None or self.peek() != "}":
            self.i = start
            self.fail("a '{' must start a bound {n}, {n,} or {n,m}; write a literal '{' as \\{")
        self.i += 1
        if high is not None and high < low:
            self.fail(f"the bound {{{low},{high}}} is out of order")
        if max(low, high or 0) > MAX_REPEAT:
            self.fail(f"a bound is at most {MAX_REPEAT}")
        if high is None:
            return f"{{{low},}}", low + 1
        text_ = f"{{{low}}}" if high == low else f"{{{low},{high}}}"
        return text_, max(high, 1)

    def number(self) -> int | None:
        start = self.i
        while self.peek().isdigit() and self.peek().isascii():
            self.i += 1
        digits = self.p[start : self.i]
        return int(digits) if digits else None

    def escape(self) -> tuple[str, int, bool]:
        self.i += 1
        c = self.peek()
        if not c:
            self.fail("a pattern cannot end with '\\'")
        self.i += 1
        if c.lower() in _SHORTHAND:
            body = _SHORTHAND[c.lower()]
            return (f"[^{body}]" if c.isupper() else f"[{body}]"), 1, True
        if c in _CONTROL:
            return "\\" + c, 1, True
        if c in _PUNCTUATION:
            return _literal(c), 1, True
        self.i -= 1
        self.fail(self.escape_refused(c))

    def escape_refused(self, c: str) -> str:
        if c in _REFUSED_ESCAPES:
            return _REFUSED_ESCAPES[c]
        if c.isdigit():
            return "backreferences and octal escapes are not supported"
        return f"the escape \\{c} is not supported"

    def bracket(self) -> str:
        self.i += 1
        negate = self.peek() == "^"
        if negate:
            self.i += 1
        items: list[str] = []
        first = True
        while True:
            c = self.peek()
            if not c:
                self.fail("missing ']'")
            if c == "]" and not first:
                self.i += 1
                break
            first = False
            if c == "[":
                self.fail(
                    "write a '[' inside [...] as \\[ (POSIX classes such as [:alpha:] are not "
                    "supported: use a range or \\d, \\w, \\s)"
                )
            low, is_char = self.class_item()
            if is_char and self.peek() == "-" and self.peek(1) not in ("]", ""):
                self.i += 1
                high, high_is_char = self.class_item()
                if not high_is_char:
                    self.fail("a range must end with a character")
                if ord(high) < ord(low):
                    self.fail(f"the range {low}-{high} is out of order")
                items.append(f"{_class_literal(low)}-{_class_literal(high)}")
            else:
                items.append(_class_literal(low) if is_char else low)
        return "[" + ("^" if negate else "") + "".join(items) + "]"

    def class_item(self) -> tuple[str, bool]:
        """One member of [...]: (a character, True) or (spelled-out class, False)."""
        c = self.p[self.i]
        if c != "\\":
            self.i += 1
            return self.char(c), True
        self.i += 1
        e = self.peek()
        if not e:
            self.fail("a pattern cannot end with '\\'")
        self.i += 1
        if e in _SHORTHAND:
            return _SHORTHAND[e], False
        if e.lower() in _SHORTHAND:
            self.i -= 1
            self.fail(f"\\{e} is not supported inside [...]: write [^...] instead")
        if e in _CONTROL:
            return _CONTROL[e], True
        if e in _PUNCTUATION:
            return e, True
        self.i -= 1
        self.fail(self.escape_refused(e))


def _literal(c: str) -> str:
    if c in _META:
        return "\\" + c
    return _CONTROL_ESCAPE.get(c, c)


def _class_literal(c: str) -> str:
    if c in _CLASS_META:
        return "\\" + c
    return _CONTROL_ESCAPE.get(c, c)
