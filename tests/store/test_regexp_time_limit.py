"""SQLite statements carrying a user's pattern stop at their time limit (regexp.time_limit),
as PostgreSQL's statement_timeout stops its own; the connection is unlimited again after."""

from __future__ import annotations

import sqlite3
import time

import pytest

from canopy.store.regexp import TooSlow, register_sqlite, time_limit

COUNT_FAR = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000000) "
    "SELECT count(*) FROM n WHERE 'web-' || i REGEXP '^web-.*7$'"
)


def test_a_long_statement_stops_at_the_limit() -> None:
    conn = sqlite3.connect(":memory:")
    register_sqlite(conn)
    started = time.monotonic()
    with pytest.raises(TooSlow), time_limit(conn, 0.05):
        conn.execute(COUNT_FAR).fetchall()
    # Unlimited, the statement runs for minutes; the margin is for a loaded machine.
    assert time.monotonic() - started < 5.0
    # The handler is gone: a statement after the block is not limited.
    conn.execute(
        "SELECT count(*) FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL "
        "SELECT i + 1 FROM n WHERE i < 300000) SELECT i FROM n)"
    ).fetchall()


def test_a_statement_within_the_limit_answers() -> None:
    conn = sqlite3.connect(":memory:")
    with time_limit(conn, 5.0):
        assert conn.execute("SELECT 1").fetchall() == [(1,)]
    with time_limit(conn, None):  # no limit at all
        assert conn.execute("SELECT 2").fetchall() == [(2,)]


def test_other_errors_pass_through() -> None:
    conn = sqlite3.connect(":memory:")
    with pytest.raises(sqlite3.OperationalError), time_limit(conn, 5.0):
        conn.execute("SELECT * FROM nowhere")
