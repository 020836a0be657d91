"""inventory: clouds.any_image replaces images.any_sim

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 00:06:00.000000

Whether a cloud boots canopy's image ids without a mapping is now the cloud's, read from
its driver by the inventory job, not the image's "any sim" flag. Existing sim clouds keep
booting any image until their first inventory says so again. Capacity and flavor mappings
are the inventory's too; `clouds.capacity_updated_at` (until now never set) says when it
last read them, and a cloud never read is not placeable.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # In place (SQLite >= 3.35): recreating a table other rows point at fails on SQLite.
    with op.batch_alter_table("clouds", recreate="never") as batch:
        batch.add_column(
            sa.Column("any_image", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.execute("UPDATE clouds SET any_image = (driver = 'sim')")
    with op.batch_alter_table("images", recreate="never") as batch:
        batch.drop_column("any_sim")


def downgrade() -> None:
    with op.batch_alter_table("images", recreate="never") as batch:
        batch.add_column(
            sa.Column("any_sim", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    with op.batch_alter_table("clouds", recreate="never") as batch:
        batch.drop_column("any_image")
