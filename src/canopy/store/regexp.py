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

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
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


# SQLite calls the progress handler every this many virtual-machine steps (tens of
# microseconds of work): often enough to stop within a millisecond of the limit, rarely
# enough to cost nothing measurable.
PROGRESS_STEPS = 10_000


class TooSlow(Exception):
    """A statement carrying a user's pattern ran past its time limit and was stopped."""


@contextmanager
def time_limit(conn: sqlite3.Connection, seconds: float | None) -> Iterator[None]:
    """Statements run on `conn` inside the block stop after `seconds` (SQLite's progress
    handler interrupts them: TooSlow), as PostgreSQL's `statement_timeout` stops its own.
    A pattern no index answers is tested on every row of a project, on the event loop;
    RE2 keeps each test linear, this bounds their number. None: no limit."""
    if seconds is None:
        yield
        return
    deadline = time.monotonic() + seconds

    def past() -> int:
        return 1 if time.monotonic() > deadline else 0

    conn.set_progress_handler(past, PROGRESS_STEPS)
    try:
        yield
    except Exception as e:  # the driver's error, or SQLAlchemy's around it
        orig = getattr(e, "orig", e)
        interrupted = isinstance(orig, sqlite3.OperationalError) and "interrupt" in str(orig)
        if interrupted and time.monotonic() > deadline:
            raise TooSlow(str(orig)) from None
        raise
    finally:
        conn.set_progress_handler(None, 0)
