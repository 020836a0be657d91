"""The controllers' periodic jobs, each leased by one worker at a time."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from canopy.store.models.base import Base, Leased


class Job(Leased, Base):
    """A periodic job (e.g. one cloud's sync), taken by one worker at a time through a lease."""

    __tablename__ = "jobs"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    next_run_at: Mapped[datetime | None]
    last_run_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    cursor: Mapped[datetime | None]
    runs: Mapped[int] = mapped_column(Integer, default=0)
