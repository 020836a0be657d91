"""software_configs and software_deployments: Heat's software config and deployment REST API

Revision ID: 0029
Revises: 0028
Create Date: 2026-11-30 02:55:00.000000

Two new tables for the configs and deployments made through `/software_configs` and
`/software_deployments` (a stack's own stay its resource rows). Nothing existing changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "software_configs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("group", sa.String(255), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_software_configs_project", "software_configs", ["project_id", "created_at", "id"]
    )
    op.create_table(
        "software_deployments",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("config_id", sa.String(64), sa.ForeignKey("software_configs.id"), nullable=False),
        sa.Column("server_id", sa.String(255), nullable=False),
        sa.Column("action", sa.String(255), nullable=True),
        sa.Column("status", sa.String(255), nullable=True),
        sa.Column("status_reason", sa.Text(), nullable=False),
        sa.Column("input_values", sa.JSON(), nullable=True),
        sa.Column("output_values", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "ix_software_deployments_project", "software_deployments", ["project_id", "server_id"]
    )
    op.create_index("ix_software_deployments_config", "software_deployments", ["config_id"])


def downgrade() -> None:
    op.drop_index("ix_software_deployments_config", "software_deployments")
    op.drop_index("ix_software_deployments_project", "software_deployments")
    op.drop_table("software_deployments")
    op.drop_index("ix_software_configs_project", "software_configs")
    op.drop_table("software_configs")
