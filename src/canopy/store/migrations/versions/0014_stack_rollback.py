"""stacks.previous: what an update replaced, so that a failed update can roll back

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 00:00:00.000000

One nullable JSON column on stacks; nothing else changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("stacks") as batch:
        batch.add_column(sa.Column("previous", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("stacks", recreate="never") as batch:  # in place: see 0005
        batch.drop_column("previous")
