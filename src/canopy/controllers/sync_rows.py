"""Sync's locked rows as plain values, and their changes written a few statements a slice.

A slice of servers whose state changed out of band (stopped, started, broken, booted) cost
the loop about 1 ms a row through the ORM: full rows loaded as objects, each change
tracked by attribute events, one notification object per row, and the unit of work's
flush. Here the locked read names only the columns sync and the notifications read
(`COLUMNS`), each row is a `Draft` (its columns as plain attributes, which
`apply_observation` changes as it would an ORM row), and what changed is written with one
executemany UPDATE per set of changed columns, one INSERT of the notifications and one of
the instance action events: a handful of statements a slice, whatever its size.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Update, bindparam, insert, select, type_coerce, update
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.store.events import event_row, latest_action_ids
from canopy.store.models import InstanceActionEvent, Server
from canopy.store.types import FastJSON

# What observe, apply_observation, the boot times and a server's notification read.
_KEYS = (
    "id",
    "project_id",
    "user_id",
    "name",
    "flavor_id",
    "image_id",
    "metadata_",
    "zone",
    "host",
    "cloud",
    "remote_id",
    "remote_recorded_at",
    "create_requested_at",
    "deleted",
    "phase",
    "status",
    "task_state",
    "desired_state",
    "observed_state",
    "observed_at",
    "action_at",
    "reboot_requested",
    "reboot_done",
    "addresses",
    "fault_code",
    "fault_message",
    "fault_at",
    "created_at",
    "updated_at",
    "launched_at",
    "terminated_at",
)
_MAPPER = Server.__mapper__
# Attribute key -> its column (`metadata_` is the column `metadata`).
COLUMNS: dict[str, Column[Any]] = {k: _MAPPER.get_property(k).columns[0] for k in _KEYS}


class Draft:
    """A locked row's columns as attributes. What is set to a different value is its
    change (`changes`), as the ORM would find it at a flush: a value set equal is none."""

    def __init__(self, values: dict[str, Any]) -> None:
        object.__setattr__(self, "_was", values)
        self.__dict__.update(values)

    def __getattr__(self, name: str) -> Any:  # a column not read: a bug, said at once
        raise AttributeError(f"sync reads no column {name!r} (controllers/sync_rows.py)")

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in COLUMNS:
            raise AttributeError(f"sync writes no column {name!r} (controllers/sync_rows.py)")
        self.__dict__[name] = value

    def changes(self) -> dict[str, Any]:
        was: dict[str, Any] = self.__dict__["_was"]
        return {k: v for k, v in self.__dict__.items() if k != "_was" and v != was[k]}


# Built once: a statement's construction and cache key cost more than its SQL here.
# JSON read as the list pages read it (store/types.py: FastJSON, orjson).
_READ = {
    k: type_coerce(c, FastJSON()) if isinstance(c.type, JSON) else c for k, c in COLUMNS.items()
}
_LOCK = (
    select(*(c.label(k) for k, c in _READ.items()))
    .where(COLUMNS["id"].in_(bindparam("ids", expanding=True)))
    .order_by(COLUMNS["id"])
    .with_for_update(skip_locked=True)
)
_UPDATES: dict[tuple[str, ...], Update] = {}


def _update(keys: tuple[str, ...]) -> Update:
    """UPDATE servers SET `keys` WHERE id = ?, for an executemany (one per set of keys)."""
    stmt = _UPDATES.get(keys)
    if stmt is None:
        stmt = _UPDATES[keys] = (
            update(COLUMNS["id"].table)
            .where(COLUMNS["id"] == bindparam("k_id"))
            .values({COLUMNS[k]: bindparam(f"v_{k}", type_=COLUMNS[k].type) for k in keys})
        )
    return stmt


async def lock_drafts(s: AsyncSession, ids: Sequence[str]) -> dict[str, Draft]:
    """Rows `ids`, locked as `sync_gone.lock_rows` locks them (rows locked elsewhere are
    skipped), as drafts by id. Core, on the session's connection (no ORM objects)."""
    conn = await s.connection()
    rows = await conn.execute(_LOCK, {"ids": list(ids)})
    return {row.id: Draft(dict(row._mapping)) for row in rows}


async def write_drafts(s: AsyncSession, drafts: Sequence[Draft]) -> None:
    """Each draft's changes: one executemany UPDATE by id per set of changed columns."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for d in drafts:
        changed = d.changes()
        if changed:
            one = {f"v_{k}": v for k, v in changed.items()}
            one["k_id"] = d.id
            groups.setdefault(tuple(sorted(changed)), []).append(one)
    if not groups:
        return
    conn = await s.connection()
    for keys, params in groups.items():
        await conn.execute(_update(keys), params)


async def log_events(
    s: AsyncSession,
    logged: Sequence[tuple[str, str]],
    action: str,
    event: str,
    host: str,
    now: datetime,
) -> None:
    """`add_event(..., result="Success")` for many servers, in order: (server id, details)
    on each one's latest action named `action` (if it has one), one INSERT."""
    if not logged:
        return
    acts = await latest_action_ids(s, list(dict.fromkeys(sid for sid, _ in logged)), action)
    rows = [
        event_row(acts[sid], event=event, result="Success", details=details, host=host, now=now)
        for sid, details in logged
        if sid in acts
    ]
    if rows:
        await s.execute(insert(InstanceActionEvent), rows)
