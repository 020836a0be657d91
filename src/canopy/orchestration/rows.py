"""New resource rows of a step written with one Core INSERT (issue 11's wide stack).

The first step of a stack of N servers makes N resource rows. As ORM objects added to the
session, their construction (an attribute event per column) and the unit of work's flush
were about a fifth of the step's CPU before the servers were asked for. A step's new rows of
a type that creates many at once (servers) are built here without the ORM's attribute
events (`build`, every column given), held out of the session, and written together by
`write_rows` with one INSERT; each is then attached to the session as a persistent, clean
object, so whatever the step changes on it afterwards is flushed as an UPDATE, as for any
row it loaded. Nothing between a row's build and its write reads it from the database
(the round's rows are written before its servers are created: walk.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, insert, inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from canopy.store.models import StackResource

_TABLE = cast(Table, StackResource.__table__)
_COLUMNS = frozenset(c.key for c in _TABLE.columns)
_MANAGER = inspect(StackResource).class_manager


def build(values: dict[str, Any]) -> StackResource:
    """A transient StackResource holding `values` (every column of the table)."""
    missing = _COLUMNS - set(values)
    if missing:
        raise ValueError(f"a held row needs every column; missing {sorted(missing)}")
    row: StackResource = _MANAGER.new_instance()
    row.__dict__.update(values)  # a transient object's state is its __dict__
    return row


async def write_rows(s: AsyncSession, rows: Sequence[StackResource]) -> None:
    """INSERT `rows` (built by `build`) with one statement; then attach them to `s`,
    persistent and unchanged."""
    if not rows:
        return
    await s.execute(insert(_TABLE), [{k: r.__dict__[k] for k in _COLUMNS} for r in rows])
    for r in rows:
        make_transient_to_detached(r)
    s.add_all(rows)
