"""indexes for a usage sweep that starts from the counters

Revision ID: 0035
Revises: 0034
Create Date: 2026-11-30 10:00:00.000000

A peak-usage sweep (placement on a cloud with a reservation, a lease create, a free-slot
search) read every claim that overlapped its window: the open-ended claims of every server
included, about 500 ms at 100,000 servers inside a write transaction. It now starts from
the cloud's counters and reads only the claims that differ from them at the window's start
and those that start or end inside it (store/claim_sweep.py):

- claims (cloud, ends_at): the ends inside a window, and the counted claims already over;
- claims (cloud, starts_at) where not counted, partial: the uncounted claims in use at the
  window's start (a reservation's, begun but not yet settled).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0035"
down_revision: str | None = "0034"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_claims_cloud_ends", "claims", ["cloud", "ends_at"])
    op.create_index(
        "ix_claims_uncounted",
        "claims",
        ["cloud", "starts_at"],
        sqlite_where=sa.text("counted IS 0"),
        postgresql_where=sa.text("counted IS false"),
    )


def downgrade() -> None:
    op.drop_index("ix_claims_uncounted", "claims")
    op.drop_index("ix_claims_cloud_ends", "claims")
