"""servers: a status index in page order; SQLite's trigram index of names

Revision ID: 0033
Revises: 0032
Create Date: 2026-11-30 06:00:00.000000

`?status=ERROR` (what `openstack server list --status ERROR` sends) had no index: the page
walked the project's rows in page order, testing each (60 ms at 100,000 servers when none
matches). `ix_servers_project_status` (project_id, status, created_at, id, deleted) holds
one project's rows of one status in page order: the page is a range of it, read up to the
limit, with `deleted` tested from the index.

On SQLite, `store.name_trigrams.install` creates an FTS5 trigram index of the names, kept
by triggers, and fills it from the servers there are (see that module): `?name=NAME`,
unanchored as the client sends it, is read from it. PostgreSQL has pg_trgm (0013).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from canopy.store import name_trigrams

revision: str = "0033"
down_revision: str | None = "0032"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUS = "ix_servers_project_status"


def upgrade() -> None:
    op.create_index(STATUS, "servers", ["project_id", "status", "created_at", "id", "deleted"])
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        name_trigrams.install(bind)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        name_trigrams.uninstall(bind)
    op.drop_index(STATUS, table_name="servers")
