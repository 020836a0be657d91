"""indexes that keep two controllers' reads off whole tables

Revision ID: 0032
Revises: 0031
Create Date: 2026-11-30 06:00:00.000000

- deliveries (status, updated_at): the notifications controller prunes delivered, skipped
  and dead deliveries older than the retention. With no index on `updated_at` each prune
  read every delivery (nearly all delivered, kept the retention's 7 days) under the
  database's write lock; with it, the prune reads the rows it deletes.
- stack_signals (stack_id) where not handled yet, partial: the orchestration loop's "what
  is due" asks for the stacks with an unhandled signal at every pass; the handled ones
  (up to 200 kept per stack) are not read for it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0032"
down_revision: str | None = "0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_deliveries_status_updated", "deliveries", ["status", "updated_at"])
    op.create_index(
        "ix_stack_signals_unhandled",
        "stack_signals",
        ["stack_id", "handled_at"],
        sqlite_where=sa.text("handled_at IS NULL"),
        postgresql_where=sa.text("handled_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_stack_signals_unhandled", "stack_signals")
    op.drop_index("ix_deliveries_status_updated", "deliveries")
