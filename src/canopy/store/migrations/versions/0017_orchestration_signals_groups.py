"""stack signals and group members (orchestration: wait conditions, groups, autoscaling)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 00:00:00.000000

A new table of signals sent to stack resources, and a nullable `group_id` on
stack_resources linking a group's member rows to the group's row. Nothing existing changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("stack_resources") as batch:
        batch.add_column(sa.Column("group_id", sa.String(64), nullable=True))
    op.create_index("ix_stack_resources_group", "stack_resources", ["group_id"])
    op.create_table(
        "stack_signals",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column(
            "stack_id",
            sa.String(64),
            sa.ForeignKey("stacks.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("resource_name", sa.String(255), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=False),
    )
    op.create_index("ix_stack_signals_pending", "stack_signals", ["stack_id", "handled_at", "seq"])


def downgrade() -> None:
    op.drop_index("ix_stack_signals_pending", "stack_signals")
    op.drop_table("stack_signals")
    op.drop_index("ix_stack_resources_group", "stack_resources")
    with op.batch_alter_table("stack_resources", recreate="never") as batch:  # in place: see 0005
        batch.drop_column("group_id")
