"""clouds draining: removed_at and the stored driver settings

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 00:05:00.000000

A cloud removed from the config keeps its row; `removed_at` says since when, and
`driver_settings` keeps what a worker needs to build its driver (never secrets), so its
servers can still be deleted. Existing rows get nulls: a configured cloud's settings are
written at the next start, and a cloud already removed before this revision has none (its
servers need the cloud back in the config to be deleted, as before).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("clouds") as batch:
        batch.add_column(sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("driver_settings", sa.JSON(), nullable=True))


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN in place (SQLite >= 3.35): recreating the table, as batch
    # mode would, fails on SQLite while rows of other tables point at it.
    with op.batch_alter_table("clouds", recreate="never") as batch:
        batch.drop_column("driver_settings")
        batch.drop_column("removed_at")
