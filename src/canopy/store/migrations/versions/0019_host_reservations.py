"""host reservations (Blazar's physical:host) and servers booted into them

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-29 02:50:00.000000

`host_allocations`: which registered host a host reservation holds, over its lease's
window (copied here so "is this host free over [start, end)" is one indexed query);
`reservations.min_hosts/max_hosts/hypervisor_properties/before_end`: the host
reservation's own fields; `servers.reservation_id/reserved_host_id`: a server booted with
the scheduler hint `reservation=<id>` and the reserved host placement pinned it to.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "host_allocations",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "reservation_id",
            sa.String(64),
            sa.ForeignKey("reservations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("host_id", sa.Integer(), sa.ForeignKey("reservable_hosts.id"), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_host_allocations_reservation", "host_allocations", ["reservation_id"])
    op.create_index(
        "ix_host_allocations_host_window", "host_allocations", ["host_id", "start_at", "end_at"]
    )
    with op.batch_alter_table("reservations") as b:
        b.add_column(sa.Column("min_hosts", sa.Integer(), nullable=True))
        b.add_column(sa.Column("max_hosts", sa.Integer(), nullable=True))
        b.add_column(sa.Column("hypervisor_properties", sa.Text(), nullable=True))
        b.add_column(sa.Column("before_end", sa.String(16), nullable=True))
    with op.batch_alter_table("servers") as b:
        b.add_column(sa.Column("reservation_id", sa.String(64), nullable=True))
        b.add_column(sa.Column("reserved_host_id", sa.Integer(), nullable=True))
    op.create_index("ix_servers_reservation", "servers", ["reservation_id"])


def downgrade() -> None:
    op.drop_index("ix_servers_reservation", table_name="servers")
    # ALTER TABLE ... DROP COLUMN in place (see 0005): recreating these tables fails on
    # SQLite while rows of other tables point at them.
    with op.batch_alter_table("servers", recreate="never") as b:
        b.drop_column("reserved_host_id")
        b.drop_column("reservation_id")
    with op.batch_alter_table("reservations", recreate="never") as b:
        b.drop_column("before_end")
        b.drop_column("hypervisor_properties")
        b.drop_column("max_hosts")
        b.drop_column("min_hosts")
    op.drop_index("ix_host_allocations_host_window", table_name="host_allocations")
    op.drop_index("ix_host_allocations_reservation", table_name="host_allocations")
    op.drop_table("host_allocations")
