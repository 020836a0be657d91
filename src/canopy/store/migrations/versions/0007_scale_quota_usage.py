"""quota usage counters per project; servers by project and name

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 00:06:00.000000

A create's quota check counted every live server of the project (50 ms at 100,000
servers against 10 ms in an empty project). `quota_usage` keeps each project's live
instances, cores and RAM, updated in the transactions that create and finally delete
servers and recounted by housekeeping. Existing projects are counted here, once.

`ix_servers_project_name` answers an exact-name look-up (`?name=^web-42$`) from the
index instead of matching the pattern against every server of the project.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_servers_project_name", "servers", ["project_id", "name", "deleted"])
    op.create_table(
        "quota_usage",
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("instances", sa.BigInteger(), nullable=False),
        sa.Column("cores", sa.BigInteger(), nullable=False),
        sa.Column("ram", sa.BigInteger(), nullable=False),
        sa.Column("counted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("project_id"),
    )
    op.execute(
        "INSERT INTO quota_usage (project_id, instances, cores, ram) "
        "SELECT p.id, COUNT(s.id), COALESCE(SUM(f.vcpus), 0), COALESCE(SUM(f.ram_mb), 0) "
        "FROM projects p "
        "LEFT JOIN servers s ON s.project_id = p.id AND s.deleted = false "
        "LEFT JOIN flavors f ON f.id = s.flavor_id "
        "GROUP BY p.id"
    )


def downgrade() -> None:
    op.drop_table("quota_usage")
    op.drop_index("ix_servers_project_name", table_name="servers")
