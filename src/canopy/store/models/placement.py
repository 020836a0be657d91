"""Scheduling's record: each placement decision, the capacity claims held on clouds, and the
capacity blocks placement honours after capacity errors."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from canopy.store.models.base import Base


class Placement(Base):
    """One scheduling decision for one server attempt, with its explanation."""

    __tablename__ = "placements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    server_id: Mapped[str] = mapped_column(ForeignKey("servers.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    cloud: Mapped[str | None] = mapped_column(String(64))
    alternates: Mapped[list[Any]] = mapped_column(JSON, default=list)
    explanation: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reason: Mapped[str] = mapped_column(Text, default="")
    worker: Mapped[str] = mapped_column(String(128), default="")  # which worker decided
    created_at: Mapped[datetime]


class Claim(Base):
    """Capacity held on a cloud over a window of time, for a server or for a reservation.

    Exactly one owner is set (`ck_claims_one_owner`). A server's claim starts when it is
    placed and is open-ended (`ends_at` NULL) until it is released (the row is deleted).
    A reservation's claim spans its lease; `reservation_id` is a plain string (no foreign
    key): a reservation's id, or `host:<id>` for the open-ended claim that keeps a host
    registered for reservation out of the ordinary pool (reservations/hosts.py).
    The window is half-open: the claim holds [starts_at, ends_at).
    `counted`: whether its cloud's counters hold it (store/claim_counts.py, migration 0031).
    """

    __tablename__ = "claims"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    server_id: Mapped[str | None] = mapped_column(
        ForeignKey("servers.id", ondelete="CASCADE"), unique=True
    )
    reservation_id: Mapped[str | None] = mapped_column(String(64), index=True)
    cloud: Mapped[str] = mapped_column(ForeignKey("clouds.name"))
    vcpus: Mapped[int] = mapped_column(Integer)
    ram_mb: Mapped[int] = mapped_column(Integer)
    disk_gb: Mapped[int] = mapped_column(Integer, default=0)
    instances: Mapped[int] = mapped_column(Integer, default=1)
    price_per_hour_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    counted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    __table_args__ = (
        CheckConstraint(
            "(server_id IS NULL) <> (reservation_id IS NULL)", name="ck_claims_one_owner"
        ),
        # The peak-usage query reads one cloud's claims that start before a window ends;
        # the EXISTS "does anything start later" is one seek.
        Index("ix_claims_cloud_window", "cloud", "starts_at", "ends_at"),
        # A sweep starts from the counters and reads only the claims they differ on, and
        # those that end inside its window (store/claim_sweep.py): the claims not counted
        # yet, and the ends, each one range.
        Index("ix_claims_cloud_ends", "cloud", "ends_at"),
        Index(
            "ix_claims_uncounted",
            "cloud",
            "starts_at",
            sqlite_where=text("counted IS 0"),
            postgresql_where=text("counted IS false"),
        ),
    )


class CapacityBlock(Base):
    """Placement skips (cloud, zone, flavor) until `until` after a capacity error there;
    zone '' is every zone of the cloud (see store/capacity_blocks.py)."""

    __tablename__ = "capacity_blocks"

    cloud: Mapped[str] = mapped_column(
        ForeignKey("clouds.name", ondelete="CASCADE"), primary_key=True
    )
    zone: Mapped[str] = mapped_column(String(64), primary_key=True)
    flavor_id: Mapped[str] = mapped_column(
        ForeignKey("flavors.id", ondelete="CASCADE"), primary_key=True
    )
    until: Mapped[datetime]
    reason: Mapped[str] = mapped_column(Text)
