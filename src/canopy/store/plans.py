"""Hints that keep the query planner on the right index, with and without statistics.

A controller's queries select the few rows in a working phase (`schedule`, `create`,
`converge`, ...) out of a table where nearly every row is at rest (`steady`, `done`).
Without statistics SQLite guesses from the shape of the query; after an operator runs
`ANALYZE` (or `PRAGMA optimize`) it knows only the average number of rows per phase, not
how skewed they are, and then prefers a scan of the whole table (a controller's count
query took 850 ms at 100,000 servers, every pass). `rare(term)` tells SQLite that `term`
is seldom true (its `unlikely()`, which costs nothing at run time), so the plan searches
the phase index either way. PostgreSQL keeps per-value statistics (the most common values)
and needs no hint: there the term is rendered as it is.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.sql.functions import FunctionElement


class rare(FunctionElement[bool]):  # a SQL function, named like one
    """`term`, marked as true for few rows (SQLite's `unlikely`)."""

    # No Boolean type: SQLite, which has no boolean type, would get `unlikely(...) = 1`,
    # a comparison the planner cannot see through.
    inherit_cache = True

    def __init__(self, term: ColumnElement[bool]) -> None:
        super().__init__(term)


@compiles(rare)
def _plain(element: rare, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


@compiles(rare, "sqlite")
def _sqlite(element: rare, compiler: Any, **kw: Any) -> str:
    return f"unlikely({compiler.process(element.clauses, **kw)})"


class scarce(FunctionElement[bool]):  # a SQL function, named like one
    """`term`, true for almost no row: an equality on a column nearly unique (SQLite's
    `likelihood(term, 0.001)`). `rare`'s `unlikely` (1 in 16) is not enough there: with
    statistics, SQLite took a walk of the page order, stopping after a page of 16-in-16
    matches, for cheaper than the unique index and a sort (460 ms for an exact name
    at 100,000 servers, against 1 ms)."""

    inherit_cache = True

    def __init__(self, term: ColumnElement[bool]) -> None:
        super().__init__(term)


@compiles(scarce)
def _plain_scarce(element: scarce, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


@compiles(scarce, "sqlite")
def _sqlite_scarce(element: scarce, compiler: Any, **kw: Any) -> str:
    return f"likelihood({compiler.process(element.clauses, **kw)}, 0.001)"


class unindexed(FunctionElement[Any]):  # a SQL expression, named like a function
    """`column`, which SQLite must not search by its own index here (SQLite's unary `+`).

    Where a query names a rare phase and a cloud, the cloud's index would visit every row
    of the cloud; with the cloud's column out of the running, the phase index is the plan.
    """

    inherit_cache = True

    def __init__(self, column: ColumnElement[Any] | QueryableAttribute[Any]) -> None:
        super().__init__(column)
        self.type = column.type


@compiles(unindexed)
def _plain_column(element: unindexed, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


@compiles(unindexed, "sqlite")
def _sqlite_column(element: unindexed, compiler: Any, **kw: Any) -> str:
    return f"+{compiler.process(element.clauses, **kw)}"


class sorted_apart(FunctionElement[Any]):  # a SQL expression, named like a function
    """`column` as a sort key no index may supply: the rows are found by the query's
    filters and sorted afterwards (SQLite's unary `+`, PostgreSQL's COALESCE(c, c), same
    order and same NULLs). Where few rows match a range of one index, walking another
    index in page order to meet them visits the whole project; a planner without
    statistics (or, on SQLite, with them) would take that walk to spare a small sort."""

    inherit_cache = True

    def __init__(self, column: ColumnElement[Any] | QueryableAttribute[Any]) -> None:
        super().__init__(column)
        self.type = column.type


@compiles(sorted_apart)
def _apart(element: sorted_apart, compiler: Any, **kw: Any) -> str:
    inner = compiler.process(element.clauses, **kw)
    return f"COALESCE({inner}, {inner})"


@compiles(sorted_apart, "sqlite")
def _apart_sqlite(element: sorted_apart, compiler: Any, **kw: Any) -> str:
    return f"+{compiler.process(element.clauses, **kw)}"
