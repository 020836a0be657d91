"""hosts registered for reservation (Blazar's os-hosts)

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-29 00:40:00.000000

`clouds.hosts`: the physical hosts a cloud's driver reports (written by the inventory);
`reservable_hosts`: the hosts an administrator registered, with integer ids as Blazar's.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("clouds") as b:
        b.add_column(sa.Column("hosts", sa.JSON(), nullable=True))
    op.create_table(
        "reservable_hosts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("cloud", sa.String(64), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("zone", sa.String(255), nullable=False),
        sa.Column("hypervisor_type", sa.String(32), nullable=False),
        sa.Column("vcpus", sa.Integer(), nullable=False),
        sa.Column("memory_mb", sa.Integer(), nullable=False),
        sa.Column("local_gb", sa.Integer(), nullable=False),
        sa.Column("reservable", sa.Boolean(), nullable=False),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("cloud", "host", name="uq_reservable_hosts_cloud_host"),
    )


def downgrade() -> None:
    op.drop_table("reservable_hosts")
    # ALTER TABLE ... DROP COLUMN in place (see 0005): recreating `clouds` fails on SQLite
    # while rows of other tables point at it.
    with op.batch_alter_table("clouds", recreate="never") as b:
        b.drop_column("hosts")
