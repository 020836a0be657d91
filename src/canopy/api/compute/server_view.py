"""What the server views read of a server: a plain tuple, from a list page's rows or from
one ORM entity, so a page of 100 renders without ORM entities, row attribute look-ups or
datetime parsing.

A list page selects `list_columns(...)` (one query, as before) and wraps each row with
`ServerView._make`; one server's show wraps its entity with `view_of`. Times are text
already (`store.types.DisplayTime`: naive UTC with microseconds, what Nova shows for a
raw datetime; `isotime_of` cuts Nova's `isotime` from it), JSON columns are decoded by
orjson (`store.types.FastJSON`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import null, type_coerce

from canopy.store.models import Server
from canopy.store.types import DisplayTime, FastJSON, decode_json, display_text, display_time


class ServerView(NamedTuple):
    id: str
    name: str
    status: str
    deleted: bool
    project_id: str
    user_id: str
    metadata_: dict[str, Any] | None
    cloud: str | None
    image_id: str | None
    boot_from_volume: bool
    flavor_id: str
    created_at: str
    updated_at: str
    addresses: dict[str, Any] | None
    requested_zone: str | None
    config_drive: bool
    key_name: str | None
    launched_at: str | None
    terminated_at: str | None
    task_state: str | None
    observed_state: str | None
    fault_code: int | None
    fault_message: str | None
    fault_at: str | None
    remote_id: str | None
    launch_index: int
    locked: bool
    description: str | None
    locked_reason: str | None
    group_id: str | None
    attempt_log: list[Any] | None  # read for admins only (a fault's details)


_TIMES = frozenset({"created_at", "updated_at", "launched_at", "terminated_at", "fault_at"})
_JSONS = frozenset({"metadata_", "addresses", "attempt_log"})


def _column(name: str) -> Any:
    col = getattr(Server, name)
    if name in _TIMES:
        return type_coerce(col, DisplayTime()).label(name)
    if name in _JSONS:
        return type_coerce(col, FastJSON()).label(name)
    return col


BASIC_COLUMNS = (Server.id, Server.name)
DETAIL_COLUMNS = tuple(_column(name) for name in ServerView._fields)
# A member's page never shows a fault's details: its attempt log is not read.
MEMBER_DETAIL_COLUMNS = (*DETAIL_COLUMNS[:-1], null().label("attempt_log"))


def list_columns(*, detail: bool, admin: bool) -> tuple[Any, ...]:
    if not detail:
        return BASIC_COLUMNS
    return DETAIL_COLUMNS if admin else MEMBER_DETAIL_COLUMNS


class BasicView(NamedTuple):
    id: str
    name: str


_FIELDS = ServerView._fields
_TIME_AT = tuple(i for i, name in enumerate(_FIELDS) if name in _TIMES)
_JSON_AT = tuple(i for i, name in enumerate(_FIELDS) if name in _JSONS)
_FLAG_AT = tuple(
    i
    for i, name in enumerate(_FIELDS)
    if name in ("deleted", "boot_from_volume", "config_drive", "locked")
)


def views_of_plain(rows: Sequence[tuple[Any, ...]], *, detail: bool) -> list[Any]:
    """A page's plain rows (`list_columns`, as SQLite's driver returns them: times and
    JSON as text, booleans as 0/1) as the views read them: the same values the typed
    columns give through the engine (store/plain_reads.py): `display_text` for times
    (its common case inline: SQLAlchemy's SQLite text, cut), `decode_json` for JSON and
    `bool` for booleans, as the Boolean type reads SQLite's integers."""
    if not detail:
        return [BasicView._make(row) for row in rows]
    out = []
    make = ServerView._make
    for row in rows:
        values = list(row)
        for i in _TIME_AT:
            t = values[i]
            if t is not None:
                if t.__class__ is str and len(t) == 26 and t[10] == " " and t[0] != "0":
                    values[i] = t.replace(" ", "T", 1)
                else:
                    values[i] = display_text(t)
        for i in _JSON_AT:
            j = values[i]
            if j is not None:
                values[i] = {} if j == "{}" else decode_json(j)
        for i in _FLAG_AT:
            f = values[i]
            if f is not None:
                values[i] = bool(f)
        out.append(make(values))
    return out


def view_of(server: Server) -> ServerView:
    """One server's entity as the views read it."""
    values = []
    for name in ServerView._fields:
        value = getattr(server, name)
        if name in _TIMES and isinstance(value, datetime):
            value = display_time(value)
        values.append(value)
    return ServerView._make(values)


def isotime_of(shown: str | None) -> str | None:
    """Nova's `isotime` (second precision, "Z") of a DisplayTime text."""
    if shown is None:
        return None
    if shown[4] != "-":  # a year before 1000, as strftime writes it
        return shown.split(".", 1)[0] + "Z"
    return shown[:19] + "Z"
