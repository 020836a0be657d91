"""servers.host: the physical host the cloud reports a server on

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-29 09:30:00.000000

Registering a host for reservation (Blazar's os-hosts) is refused while servers run on it
(Blazar's HostHavingServers); the API never asks a cloud, so it reads the host each server
was last reported on from this column, through the (cloud, host) index. Existing rows start
with no host: sync's first full pass of each worker compares every row and fills it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("servers") as batch:
        batch.add_column(sa.Column("host", sa.String(length=255), nullable=True))
    op.create_index("ix_servers_cloud_host", "servers", ["cloud", "host"])


def downgrade() -> None:
    op.drop_index("ix_servers_cloud_host", table_name="servers")
    with op.batch_alter_table("servers") as batch:
        batch.drop_column("host")
