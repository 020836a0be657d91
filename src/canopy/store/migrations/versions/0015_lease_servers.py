"""servers a lease carries, booted ahead of its start (a Canopy extension)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 00:14:00.000000

A new table, `lease_servers`, and three nullable columns on `leases`: when the carried
servers are booted (`boot_at`), how far ahead of the start (`boot_lead_seconds`), and when
they were (`booted_at`). Their early capacity is more `claims` rows of the reservation.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("leases") as b:
        b.add_column(sa.Column("boot_at", sa.DateTime(timezone=True), nullable=True))
        b.add_column(sa.Column("boot_lead_seconds", sa.Float(), nullable=True))
        b.add_column(sa.Column("booted_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "lease_servers",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "lease_id",
            sa.String(64),
            sa.ForeignKey("leases.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("reservation_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("image_id", sa.String(64), nullable=False),
        sa.Column("key_name", sa.String(255), nullable=True),
        sa.Column("user_data", sa.Text(), nullable=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("server_ids", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_lease_servers_lease_id", "lease_servers", ["lease_id"])


def downgrade() -> None:
    op.drop_index("ix_lease_servers_lease_id", "lease_servers")
    op.drop_table("lease_servers")
    with op.batch_alter_table("leases", recreate="never") as b:  # in place: see 0005
        b.drop_column("booted_at")
        b.drop_column("boot_lead_seconds")
        b.drop_column("boot_at")
