"""servers: an index in a project's page order, regardless of `deleted`

Revision ID: 0025
Revises: 0024
Create Date: 2026-11-29 09:30:00.000000

A `changes-since` listing returns deleted servers too, so the page-order index that leads
with `deleted` (ix_servers_project_created) cannot give its order. When most of a project
changed since T, its first page is a walk of this index that stops after `limit` matches,
instead of sorting every match (about 100 ms at 50,000 servers on SQLite). `updated_at`
and `deleted` ride along so that the estimate choosing that plan reads the index alone
(services/server_statements.py, `walk_estimate`).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ["project_id", "created_at", "updated_at", "deleted"]


def upgrade() -> None:
    op.create_index("ix_servers_project_order", "servers", COLUMNS)


def downgrade() -> None:
    op.drop_index("ix_servers_project_order", table_name="servers")
