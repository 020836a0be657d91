"""zones inside clouds, abilities, capacity blocks per (cloud, zone, flavor)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 00:06:00.000000

`clouds.zones` caches the zones a cloud's driver reports (null until a worker has asked),
`clouds.abilities` what its driver cannot do (ability -> reason), both written by the
workers so the API never calls a cloud. `servers.zone` is the zone inside the cloud a
server was placed in or reported in. `capacity_blocks` replaces the whole-cloud blocklist
for capacity errors: one row per (cloud, zone, flavor), the zone '' meaning every zone.
Existing rows get nulls / empty values: zones are learnt at the next sync.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("clouds") as batch:
        batch.add_column(sa.Column("zones", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("zones_updated_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("abilities", sa.JSON(), nullable=True))
    with op.batch_alter_table("servers") as batch:
        batch.add_column(sa.Column("zone", sa.String(length=64), nullable=True))
    op.create_table(
        "capacity_blocks",
        sa.Column("cloud", sa.String(length=64), nullable=False),
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.Column("flavor_id", sa.String(length=64), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["cloud"], ["clouds.name"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["flavor_id"], ["flavors.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("cloud", "zone", "flavor_id"),
    )


def downgrade() -> None:
    op.drop_table("capacity_blocks")
    # ALTER TABLE ... DROP COLUMN in place (SQLite >= 3.35): see 0005.
    with op.batch_alter_table("servers", recreate="never") as batch:
        batch.drop_column("zone")
    with op.batch_alter_table("clouds", recreate="never") as batch:
        batch.drop_column("abilities")
        batch.drop_column("zones_updated_at")
        batch.drop_column("zones")
