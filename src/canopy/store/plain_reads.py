"""SQLite: a list page's SELECTs run straight on a read connection, rows as plain tuples.

A page of 100 servers through an ORM session cost about three times what SQLite itself
spends on it: the session and its transaction (0.4-0.8 ms of CPU: a pooled connection
checked out, BEGIN emitted through the engine, reset on return), the engine's execution
context, a `Row` per row and a result processor call per typed column. `PlainReads`
keeps the same statements (built once per shape by their callers) and runs them on
connections of its own: each statement is compiled once for SQLite and then executed
with the sqlite3 module directly, in a plain `BEGIN ... COMMIT` read transaction.

What callers get back is what the driver returns (text for times and JSON, 0/1 for
booleans): they decode what they show (api/compute/server_view.py). Bind values are
processed as the engine would (a `datetime` becomes SQLAlchemy's SQLite text), except
`q_m0`, `q_m1`, ...: a marker row's sort-key values, read raw by the same reader and
bound back as stored.

Only SQLite files have one (an in-memory database is private to its connection). A
statement with an expanding IN (a list of values) is not run here (`Unsupported`), nor is
anything once the database is busy (`Unsupported` too: SQLITE_BUSY, which a WAL reader
meets only in rare recovery moments, is for the engine's path to wait out, off this
synchronous one). Errors otherwise are SQLAlchemy's (`DBAPIError.instance`), as the
engine raises them, so the API's handlers treat them alike.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement

from canopy.store import regexp

Rows = list[tuple[Any, ...]]
Run = Callable[[ClauseElement, Mapping[str, Any]], Rows]

_RAW_BIND = re.compile(r"q_m\d+")  # a marker row's stored values, bound back as read
MAX_COMPILED = 512


class Unsupported(Exception):
    """This statement (or this moment) is for the engine's path."""


class _Compiled:
    __slots__ = ("defaults", "names", "processors", "sql")

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled: Any = statement.compile(dialect=dialect)
        if any(bind.expanding for bind in compiled.binds.values()):
            raise Unsupported("expanding IN")
        self.sql: str = compiled.string
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ())
        processors: Mapping[str, Any] = compiled._bind_processors
        self.processors = {
            name: fn
            for name, fn in processors.items()
            if fn is not None and not _RAW_BIND.fullmatch(name)
        }
        # Values fixed in the statement itself (an OFFSET of 0, a literal bound).
        self.defaults = {
            name: bind.value
            for name, bind in compiled.binds.items()
            if not bind.required and bind.callable is None
        }

    def params(self, values: Mapping[str, Any]) -> list[Any]:
        out = []
        for name in self.names:
            value = values[name] if name in values else self.defaults[name]
            fn = self.processors.get(name)
            out.append(value if fn is None or value is None else fn(value))
        return out


class PlainReads:
    """Read transactions on SQLite connections of their own (see the module's doc)."""

    def __init__(self, path: str, dialect: Dialect) -> None:
        self.path = path
        self.dialect = dialect
        self._free: list[sqlite3.Connection] = []
        self._compiled: dict[int, tuple[ClauseElement, _Compiled]] = {}

    def _connect(self) -> sqlite3.Connection:
        """A new connection; a file that cannot be opened (gone, no permission, no file
        descriptors left) is the engine's database error, as on the engine's path (503)."""
        try:
            conn = sqlite3.connect(
                self.path, timeout=0, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as e:
            raise DBAPIError.instance("connect", (), e, sqlite3.Error) from e
        try:
            conn.execute("PRAGMA query_only = ON")
            regexp.register_sqlite(conn)
        except sqlite3.Error as e:
            conn.close()
            raise DBAPIError.instance("PRAGMA query_only = ON", (), e, sqlite3.Error) from e
        return conn

    @contextmanager
    def transaction(self, *, time_limit: float | None = None) -> Iterator[Run]:
        """One read transaction; `run(statement, values)` gives its rows as tuples. With
        `time_limit`, its statements stop after that many seconds (regexp.TooSlow)."""
        conn = self._free.pop() if self._free else self._connect()
        try:
            self._call(conn, "BEGIN", ())
            with regexp.time_limit(conn, time_limit):
                yield lambda statement, values: self._run(conn, statement, values)
        finally:
            try:
                if conn.in_transaction:
                    conn.execute("COMMIT")  # read only: nothing to keep or lose
            except sqlite3.Error:
                conn.close()
            else:
                self._free.append(conn)

    def _run(
        self, conn: sqlite3.Connection, statement: ClauseElement, values: Mapping[str, Any]
    ) -> list[tuple[Any, ...]]:
        found = self._compiled.get(id(statement))
        if found is None or found[0] is not statement:
            if len(self._compiled) >= MAX_COMPILED:
                self._compiled.clear()
            found = (statement, _Compiled(statement, self.dialect))
            self._compiled[id(statement)] = found
        compiled = found[1]
        cursor = self._call(conn, compiled.sql, compiled.params(values))
        rows: list[tuple[Any, ...]] = cursor.fetchall()
        return rows

    def _call(self, conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> sqlite3.Cursor:
        try:
            return conn.execute(sql, params)
        except sqlite3.OperationalError as e:
            if _busy(e):
                raise Unsupported("database busy") from e
            raise DBAPIError.instance(sql, params, e, sqlite3.Error) from e
        except sqlite3.Error as e:
            raise DBAPIError.instance(sql, params, e, sqlite3.Error) from e

    def close(self) -> None:
        while self._free:
            self._free.pop().close()


def _busy(e: sqlite3.OperationalError) -> bool:
    code = getattr(e, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(e) or "busy" in str(e)
