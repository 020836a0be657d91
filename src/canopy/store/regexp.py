"""RE2, the linear-time engine behind SQLite's REGEXP.

SQLite has no regular expressions of its own: `x REGEXP p` calls a function the
connection registers. SQLAlchemy's dialect registers one over Python's `re`, a
backtracking engine, and SQLite statements run on the event loop here (see
`sqlite_inline.py`), so `^(a+)+$` against a long name would stall the whole process.
`Database` registers `regexp` below instead: RE2 matches in time linear in the text.

The patterns reaching it are those `canopy.services.regex.portable` wrote: the portable
dialect that PostgreSQL's `~` reads the same way. `.` matches a newline here too, as it
does in PostgreSQL.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import re2


class PatternError(ValueError):
    """RE2 refused the pattern (its message says why)."""


def _options() -> Any:
    options = re2.Options()
    options.dot_nl = True  # as PostgreSQL's `.` (no newline-sensitive mode)
    options.never_capture = True  # only "does it match" is asked
    options.log_errors = False  # a refused pattern is the caller's 400, not a log line
    return options


_OPTIONS = _options()


@lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> Any:
    """The compiled RE2 program for `pattern` (cached); PatternError if RE2 refuses it."""
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as e:
        detail = e.args[0] if e.args else e
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        raise PatternError(str(detail)) from None


def search(pattern: str, value: str | None) -> bool | None:
    """Whether `pattern` matches anywhere in `value` (SQL NULL for a NULL value)."""
    if value is None:
        return None
    return compile_pattern(pattern).search(value) is not None


def register_sqlite(dbapi_conn: Any) -> None:
    """Make `REGEXP` on this SQLite connection RE2's, replacing SQLAlchemy's `re` one."""
    dbapi_conn.create_function("regexp", 2, search, deterministic=True)
