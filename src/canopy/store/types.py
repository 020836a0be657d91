"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import DateTime, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, whatever the backend stores."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class FastJSON(TypeDecorator[Any]):
    """A JSON column read for display (`type_coerce(Server.addresses, FastJSON())`):
    decoded by orjson, several times faster than `json.loads` on a page of rows. Text
    orjson refuses (NaN, a lone surrogate escape) is decoded by `json.loads`, as before."""

    impl = Text
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return decode_json(value)


def decode_json(value: Any) -> Any:
    """FastJSON's reading of a stored JSON text (also used on plain rows)."""
    if not isinstance(value, str | bytes):
        return value  # NULL, or a driver that decoded it already
    if value == "{}":
        return {}
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return json.loads(value)


class DisplayTime(TypeDecorator[str]):
    """A UTCDateTime column read for display (`type_coerce(col, DisplayTime())`): naive
    UTC with microseconds, "YYYY-MM-DDTHH:MM:SS.ffffff" (what Nova shows for a raw
    datetime; its first 19 characters and "Z" are Nova's `isotime`).

    On SQLite the stored text is cut into that shape, with no datetime built or parsed (a
    page of servers spent more on parsing its times than on the rest of its rows); other
    backends' drivers return datetimes, which are formatted."""

    impl = Text
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        return display_text(value)


def display_text(value: Any) -> str | None:
    """DisplayTime's reading of a stored time (also used on plain rows)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return display_time(value)
    raw = str(value)
    # SQLAlchemy's SQLite storage: "YYYY-MM-DD HH:MM:SS.ffffff", naive UTC.
    if len(raw) == 26 and raw[10] == " " and raw[0] != "0":
        return raw.replace(" ", "T", 1)
    return display_time(datetime.fromisoformat(raw))


def display_time(dt: datetime) -> str:
    """`dt` (naive means UTC) as naive UTC text with microseconds."""
    if dt.tzinfo is not None and dt.tzinfo is not UTC:
        dt = dt.astimezone(UTC)
    if dt.year < 1000:
        return dt.replace(tzinfo=None).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return dt.isoformat(timespec="microseconds")[:26]
