"""clouds.*_others: what servers canopy did not create use of each cloud

Revision ID: 0028
Revises: 0027
Create Date: 2026-11-29 19:30:00.000000

The inventory recorded a cloud's total (quota, or hypervisors) as what canopy may fill, so
servers of the same project or hypervisors that canopy did not create were room canopy
thought it had. It now records the total less their use in `*_capacity`, and their use in
these columns (null: the cloud does not say what is free) so the total stays shown. Existing
rows start with null (not known): the next inventory pass of each cloud fills them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("vcpus_others", "ram_mb_others", "instances_others")


def upgrade() -> None:
    with op.batch_alter_table("clouds") as batch:
        for name in COLUMNS:
            batch.add_column(sa.Column(name, sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("clouds") as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)
