"""servers: an index on (project_id, updated_at) for a project's changes-since

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-29 06:00:00.000000

`GET /servers/detail?changes-since=T` of one project is a range of this index. Without it
SQLite walked every row of the project in page order (ix_servers_project_created) to find
the few changed since T: about 250 ms at 100,000 servers.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_servers_project_updated", "servers", ["project_id", "updated_at"])


def downgrade() -> None:
    op.drop_index("ix_servers_project_updated", table_name="servers")
