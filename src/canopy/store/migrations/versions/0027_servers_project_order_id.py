"""servers: page-order indexes carry `id`; no index leads with `deleted`

Revision ID: 0027
Revises: 0026
Create Date: 2026-11-29 12:30:00.000000

A page is ordered by (created_at, id). With `id` missing from ix_servers_project_order
(0025) and ix_servers_project_created, SQLite walks the index by created_at and sorts each
run of equal created_at by id in a temporary B-tree ("USE TEMP B-TREE FOR RIGHT PART OF
ORDER BY"). With a filter the index does not answer on top (a `changes-since` walk's
`updated_at`), SQLite 3.40 then no longer stops at the page's LIMIT: it walks the whole
project. At 100,000 servers a first `changes-since` page of 100 took 80-100 ms of the event
loop (260 ms with `deleted=false`); with `id` in the index, 0.3 ms. Each index is rebuilt
under its own name, so the plans that name them are unchanged.

`ix_servers_deleted_created` (deleted, created_at) becomes `ix_servers_created`
(created_at, id, deleted). Nearly every row shares `deleted = false`, yet without
statistics SQLite took `deleted = ?` for as selective as any other equality and chose that
index over the one a query was written for: a server group's members, a reservation's
servers, the servers on a host, whether a cloud holds any server each walked every live
server (100-260 ms at 100,000, on the event loop). Its uses, the page order of lists across
projects and of deleted servers, are kept: `ix_servers_created` for the first (the `deleted`
filter read from it), and for the second a partial index of the deleted rows only
(`ix_servers_deleted_order`), which no query of live rows can use.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# name -> (columns after, columns before)
INDEXES: dict[str, tuple[list[str], list[str]]] = {
    "ix_servers_project_order": (
        ["project_id", "created_at", "id", "updated_at", "deleted"],
        ["project_id", "created_at", "updated_at", "deleted"],
    ),
    "ix_servers_project_created": (
        ["project_id", "deleted", "created_at", "id"],
        ["project_id", "deleted", "created_at"],
    ),
}


OLD_ORDER, NEW_ORDER = "ix_servers_deleted_created", "ix_servers_created"
DELETED_ORDER = "ix_servers_deleted_order"


def upgrade() -> None:
    for name, (after, _) in INDEXES.items():
        op.drop_index(name, table_name="servers")
        op.create_index(name, "servers", after)
    op.drop_index(OLD_ORDER, table_name="servers")
    op.create_index(NEW_ORDER, "servers", ["created_at", "id", "deleted"])
    op.create_index(
        DELETED_ORDER,
        "servers",
        ["deleted", "created_at", "id"],
        sqlite_where=sa.text("deleted IS 1"),
        postgresql_where=sa.text("deleted IS true"),
    )


def downgrade() -> None:
    for name, (_, before) in INDEXES.items():
        op.drop_index(name, table_name="servers")
        op.create_index(name, "servers", before)
    op.drop_index(DELETED_ORDER, table_name="servers")
    op.drop_index(NEW_ORDER, table_name="servers")
    op.create_index(OLD_ORDER, "servers", ["deleted", "created_at"])
