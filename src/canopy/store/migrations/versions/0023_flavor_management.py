"""flavor management: Nova's flavor fields, extra specs, access lists and deletion

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-29 06:00:00.000000

`flavors` gains what Nova's flavor create takes (`description`, `ephemeral_gb`,
`swap_mb`, `rxtx_factor`), its extra specs (a JSON object) and `deleted_at`: a flavor
deleted while servers still name it stays, hidden, for them. Its name is unique only
among flavors that are not deleted (a partial unique index replaces the constraint), so
the name can be given to a new flavor. `flavor_projects`: the projects a private flavor
is shared with (Nova's flavor access).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LIVE = sa.text("deleted_at IS NULL")
# SQLite's unique constraint from 0001 has no name; batch mode names it to drop it.
_NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table("flavors", naming_convention=_NAMING) as b:
        b.add_column(sa.Column("description", sa.Text(), nullable=True))
        b.add_column(sa.Column("ephemeral_gb", sa.Integer(), nullable=False, server_default="0"))
        b.add_column(sa.Column("swap_mb", sa.Integer(), nullable=False, server_default="0"))
        b.add_column(sa.Column("rxtx_factor", sa.Float(), nullable=False, server_default="1.0"))
        b.add_column(sa.Column("extra_specs", sa.JSON(), nullable=True))
        b.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
        b.drop_constraint("uq_flavors_name" if sqlite else "flavors_name_key", type_="unique")
    op.create_index(
        "uq_flavors_live_name",
        "flavors",
        ["name"],
        unique=True,
        sqlite_where=_LIVE,
        postgresql_where=_LIVE,
    )
    op.create_table(
        "flavor_projects",
        sa.Column(
            "flavor_id",
            sa.String(64),
            sa.ForeignKey("flavors.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("project_id", sa.String(64), primary_key=True),
    )
    op.create_index("ix_flavor_projects_project_id", "flavor_projects", ["project_id"])


def downgrade() -> None:
    op.drop_index("ix_flavor_projects_project_id", table_name="flavor_projects")
    op.drop_table("flavor_projects")
    op.drop_index("uq_flavors_live_name", table_name="flavors")
    # Deleted flavors may share a live flavor's name: give them their id's (unique) name.
    op.execute(sa.text("UPDATE flavors SET name = id WHERE deleted_at IS NOT NULL"))
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table("flavors", naming_convention=_NAMING) as b:
        b.create_unique_constraint("uq_flavors_name" if sqlite else "flavors_name_key", ["name"])
        for column in (
            "deleted_at",
            "extra_specs",
            "rxtx_factor",
            "swap_mb",
            "ephemeral_gb",
            "description",
        ):
            b.drop_column(column)
