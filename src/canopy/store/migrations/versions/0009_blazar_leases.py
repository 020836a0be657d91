"""leases, reservations and lease events (the Blazar-compatible reservations)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 00:06:00.000000

Three new tables; nothing existing changes. A reservation's capacity is held in `claims`
(owner `reservation_id`, window = the lease), and its private flavor is a `flavors` row
whose id is the reservation's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _when(name: str, nullable: bool = True) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        _when("start_at", False),
        _when("end_at", False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("degraded", sa.Boolean(), nullable=False),
        _when("created_at", False),
        _when("updated_at", False),
        sa.Column("claimed_by", sa.String(128), nullable=True),
        _when("claim_expires_at"),
        _when("next_attempt_at"),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.UniqueConstraint("project_id", "name", name="uq_leases_project_name"),
    )
    op.create_index("ix_leases_next_attempt_at", "leases", ["next_attempt_at"])
    op.create_table(
        "reservations",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "lease_id",
            sa.String(64),
            sa.ForeignKey("leases.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("resource_type", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("vcpus", sa.Integer(), nullable=False),
        sa.Column("memory_mb", sa.Integer(), nullable=False),
        sa.Column("disk_gb", sa.Integer(), nullable=False),
        sa.Column("affinity", sa.Boolean(), nullable=True),
        sa.Column("resource_properties", sa.Text(), nullable=False),
        sa.Column("source_flavor_id", sa.String(64), nullable=True),
        sa.Column("placement", sa.JSON(), nullable=False),
        sa.Column("missing_resources", sa.Boolean(), nullable=False),
        sa.Column("resources_changed", sa.Boolean(), nullable=False),
        _when("created_at", False),
        _when("updated_at", False),
    )
    op.create_index("ix_reservations_lease_id", "reservations", ["lease_id"])
    op.create_table(
        "lease_events",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "lease_id",
            sa.String(64),
            sa.ForeignKey("leases.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("event_type", sa.String(32), nullable=False),
        _when("time", False),
        sa.Column("status", sa.String(16), nullable=False),
        _when("done_at"),
        _when("created_at", False),
        _when("updated_at", False),
    )
    op.create_index("ix_lease_events_lease_id", "lease_events", ["lease_id"])


def downgrade() -> None:
    op.drop_index("ix_lease_events_lease_id", "lease_events")
    op.drop_table("lease_events")
    op.drop_index("ix_reservations_lease_id", "reservations")
    op.drop_table("reservations")
    op.drop_index("ix_leases_next_attempt_at", "leases")
    op.drop_table("leases")
