"""stack adopt: the adopt data a stack is adopting its resources from

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-29 06:00:00.000000

`stacks.adopt_data`: the `resources` of a stack's `adopt_stack_data` (name -> resource id
and data), read by the engine while the stack's action is ADOPT and cleared when it ends.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("stacks") as b:
        b.add_column(sa.Column("adopt_data", sa.JSON(), nullable=True))


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN in place (see 0005).
    with op.batch_alter_table("stacks", recreate="never") as b:
        b.drop_column("adopt_data")
