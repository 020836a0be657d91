"""stacks, stack resources and stack events (the Heat-compatible orchestration)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 00:00:00.000000

Three new tables; nothing existing changes. A stack's name is unique among its project's
live stacks (a partial unique index: deleted stacks keep their names).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _when(name: str, nullable: bool = True) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "stacks",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("template", sa.JSON(), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("environment", sa.JSON(), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=False),
        sa.Column("disable_rollback", sa.Boolean(), nullable=False),
        sa.Column("timeout_mins", sa.Integer(), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        _when("action_started_at", False),
        _when("created_at", False),
        _when("updated_at"),
        _when("deleted_at"),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("claimed_by", sa.String(128), nullable=True),
        _when("claim_expires_at"),
        _when("next_attempt_at"),
        sa.Column("retries", sa.Integer(), nullable=False),
    )
    op.create_index(
        "uq_stacks_project_live_name",
        "stacks",
        ["project_id", "name"],
        unique=True,
        postgresql_where=sa.text("NOT deleted"),
        sqlite_where=sa.text("NOT deleted"),
    )
    op.create_index("ix_stacks_project_created", "stacks", ["project_id", "deleted", "created_at"])
    op.create_index("ix_stacks_status", "stacks", ["status", "next_attempt_at"])
    op.create_table(
        "stack_resources",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "stack_id",
            sa.String(64),
            sa.ForeignKey("stacks.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("type", sa.String(128), nullable=False),
        sa.Column("desired", sa.String(16), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("physical_resource_id", sa.String(255), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=False),
        sa.Column("properties", sa.JSON(), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("requires", sa.JSON(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("server_id", sa.String(64), nullable=True),
        _when("wait_until"),
        _when("created_at", False),
        _when("updated_at", False),
    )
    op.create_index("ix_stack_resources_stack", "stack_resources", ["stack_id", "name"])
    op.create_index("ix_stack_resources_server", "stack_resources", ["server_id"])
    op.create_table(
        "stack_events",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column(
            "stack_id",
            sa.String(64),
            sa.ForeignKey("stacks.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("resource_name", sa.String(255), nullable=False),
        sa.Column("logical_resource_id", sa.String(255), nullable=False),
        sa.Column("physical_resource_id", sa.String(255), nullable=False),
        sa.Column("resource_type", sa.String(128), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=False),
        _when("time", False),
    )
    op.create_index("ix_stack_events_stack", "stack_events", ["stack_id", "seq"])


def downgrade() -> None:
    op.drop_index("ix_stack_events_stack", "stack_events")
    op.drop_table("stack_events")
    op.drop_index("ix_stack_resources_server", "stack_resources")
    op.drop_index("ix_stack_resources_stack", "stack_resources")
    op.drop_table("stack_resources")
    op.drop_index("ix_stacks_status", "stacks")
    op.drop_index("ix_stacks_project_created", "stacks")
    op.drop_index("uq_stacks_project_live_name", "stacks")
    op.drop_table("stacks")
