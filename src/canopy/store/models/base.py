"""The declarative base and the lease columns a controller-visible row carries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from canopy.store.types import UTCDateTime


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class Leased:
    """The lease a controller takes on a row while it acts on it (see store/leases.py).

    Any table with these columns can be leased, renewed, fenced and released by the
    controller runtime, whatever else its rows hold.
    """

    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claim_expires_at: Mapped[datetime | None]


class Retried(Leased):
    """A leased row whose failed steps are retried later: when, and how many times so far."""

    next_attempt_at: Mapped[datetime | None]
    retries: Mapped[int] = mapped_column(Integer, default=0)
