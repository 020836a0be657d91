"""nested stacks: a stack may belong to a resource of another stack

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 00:00:00.000000

Three columns on `stacks`: `owner_id` (the parent stack, NULL for a top-level stack),
`owner_resource` (the parent's resource the stack stands for) and `nested_depth` (0 for a
top-level stack). Existing stacks are top-level.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("stacks") as batch:
        batch.add_column(sa.Column("owner_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("owner_resource", sa.String(255), nullable=True))
        batch.add_column(
            sa.Column("nested_depth", sa.Integer(), nullable=False, server_default="0")
        )
    op.create_index("ix_stacks_owner", "stacks", ["owner_id"])


def downgrade() -> None:
    op.drop_index("ix_stacks_owner", "stacks")
    with op.batch_alter_table("stacks", recreate="never") as batch:  # in place: see 0005
        batch.drop_column("nested_depth")
        batch.drop_column("owner_resource")
        batch.drop_column("owner_id")
