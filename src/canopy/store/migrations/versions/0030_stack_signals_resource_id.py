"""stack_signals.resource_id: the resource row a signal was checked against

Revision ID: 0030
Revises: 0029
Create Date: 2026-11-30 03:10:00.000000

A signal named its resource only by name, so one written for a resource (its token checked
against that row) while an update replaced it was handed to the replacement: the old
handle's agent completed the new wait condition. The route now records the row it checked,
and the engine ignores a signal whose row is no longer the resource's. Existing rows have
null (checked by name, as before).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("stack_signals") as batch:
        batch.add_column(sa.Column("resource_id", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("stack_signals") as batch:
        batch.drop_column("resource_id")
