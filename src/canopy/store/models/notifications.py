"""The tables of notifications: the outbox, subscriptions and deliveries.

An `OutboxEvent` is written in the transaction of the change it announces (see
canopy/notifications/outbox.py), so it exists if and only if the change committed. The
delivery controller fans each one out into a `Delivery` per matching `Subscription` and
sends them, in outbox order per (subscription, subject): a delivery waits while an earlier
one of its subject is pending or dead, so a dead one blocks only its own subject.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from canopy.store.models.base import Base, Retried

# A 64-bit counter on PostgreSQL; SQLite's rowid (autoincrement needs INTEGER there).
Counter = BigInteger().with_variant(Integer(), "sqlite")


class OutboxEvent(Base):
    """One event, in the order it was written (`id` only grows, never reused)."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Counter, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)  # stable across retries
    event_type: Mapped[str] = mapped_column(String(128))
    subject: Mapped[str] = mapped_column(String(128))  # "lease/<id>", "server/<id>"
    project_id: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    # Whether the delivery controller has made this event's deliveries yet.
    fanned_out: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (
        Index("ix_outbox_fanned_out", "fanned_out", "id"),
        Index("ix_outbox_subject", "subject", "event_type", "id"),
        Index("ix_outbox_created_at", "created_at"),
        {"sqlite_autoincrement": True},
    )


class Subscription(Base):
    """Where a project's events (or, for a cloud admin, every project's) are sent."""

    __tablename__ = "subscriptions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # None: every project's events (a cloud admin's subscription).
    project_id: Mapped[str | None] = mapped_column(String(64), index=True)
    user_id: Mapped[str] = mapped_column(String(64), default="")
    kind: Mapped[str] = mapped_column(String(16))  # webhook | amqp
    url: Mapped[str] = mapped_column(Text)  # never holds a password (see `sealed`)
    exchange: Mapped[str | None] = mapped_column(String(255))
    routing_key: Mapped[str | None] = mapped_column(String(255))
    event_types: Mapped[list[Any]] = mapped_column(default=list)  # patterns; [] = all
    description: Mapped[str] = mapped_column(String(255), default="")
    # The webhook's signing secret and an AMQP URL's password, sealed with the vault
    # (credentials.py). Never returned by the API, printed or logged.
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Delivery(Retried, Base):
    """One event for one subscription: pending until delivered, dead after too many tries.

    `retries` (from `Retried`) counts the attempts made; `next_attempt_at` is when the next
    may run. The row is the truth: a worker that dies mid-send leaves it pending, and its
    lease runs out.
    """

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(Counter, primary_key=True, autoincrement=True)
    subscription_id: Mapped[str] = mapped_column(ForeignKey("subscriptions.id", ondelete="CASCADE"))
    outbox_id: Mapped[int] = mapped_column(
        Counter, ForeignKey("outbox.id", ondelete="CASCADE"), index=True
    )
    subject: Mapped[str] = mapped_column(String(128))  # the event's, for the in-order rule
    status: Mapped[str] = mapped_column(String(16))  # pending | delivered | dead | skipped
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("subscription_id", "outbox_id", name="uq_deliveries_subscription_outbox"),
        # "Is an earlier one of this subject still in the way?" is one seek.
        Index("ix_deliveries_order", "subscription_id", "subject", "outbox_id"),
        Index("ix_deliveries_due", "status", "next_attempt_at"),
        # The hourly prune: the old rows of a status, not a read of every delivery.
        Index("ix_deliveries_status_updated", "status", "updated_at"),
        {"sqlite_autoincrement": True},
    )
