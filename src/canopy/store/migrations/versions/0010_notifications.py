"""outbox, subscriptions and deliveries (notifications)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 00:00:00.000000

Three new tables; nothing existing changes. Outbox and delivery ids only grow (SQLite's
AUTOINCREMENT, PostgreSQL's sequence), so the order of events is never reused.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTER = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _when(name: str, nullable: bool = True) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", COUNTER, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), nullable=False, unique=True),
        sa.Column("event_type", sa.String(128), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        _when("created_at", False),
        sa.Column("fanned_out", sa.Boolean(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_outbox_fanned_out", "outbox", ["fanned_out", "id"])
    op.create_index("ix_outbox_created_at", "outbox", ["created_at"])
    op.create_index("ix_outbox_subject", "outbox", ["subject", "event_type", "id"])
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project_id", sa.String(64), nullable=True),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("exchange", sa.String(255), nullable=True),
        sa.Column("routing_key", sa.String(255), nullable=True),
        sa.Column("event_types", sa.JSON(), nullable=False),
        sa.Column("description", sa.String(255), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        _when("created_at", False),
        _when("updated_at", False),
    )
    op.create_index("ix_subscriptions_project_id", "subscriptions", ["project_id"])
    op.create_table(
        "deliveries",
        sa.Column("id", COUNTER, primary_key=True, autoincrement=True),
        sa.Column(
            "subscription_id",
            sa.String(64),
            sa.ForeignKey("subscriptions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "outbox_id", COUNTER, sa.ForeignKey("outbox.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        _when("delivered_at"),
        _when("created_at", False),
        _when("updated_at", False),
        sa.Column("claimed_by", sa.String(128), nullable=True),
        _when("claim_expires_at"),
        _when("next_attempt_at"),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.UniqueConstraint(
            "subscription_id", "outbox_id", name="uq_deliveries_subscription_outbox"
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_deliveries_outbox_id", "deliveries", ["outbox_id"])
    op.create_index(
        "ix_deliveries_order", "deliveries", ["subscription_id", "subject", "outbox_id"]
    )
    op.create_index("ix_deliveries_due", "deliveries", ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_due", "deliveries")
    op.drop_index("ix_deliveries_order", "deliveries")
    op.drop_index("ix_deliveries_outbox_id", "deliveries")
    op.drop_table("deliveries")
    op.drop_index("ix_subscriptions_project_id", "subscriptions")
    op.drop_table("subscriptions")
    op.drop_index("ix_outbox_subject", "outbox")
    op.drop_index("ix_outbox_created_at", "outbox")
    op.drop_index("ix_outbox_fanned_out", "outbox")
    op.drop_table("outbox")
