"""claims.counted, repair fences: counters kept at the cost of what changed

Revision ID: 0031
Revises: 0030
Create Date: 2026-11-30 05:40:00.000000

A lease's start, end or move recounted its clouds' counters from every claim in use (80-150
ms at 100,000 claims, inside the write transaction). Each claim now says whether the
counters hold it (`counted`), so a step moves them by the claims it flips, adds or drops;
`clouds.counters_repaired` and `quota_usage.repairs` fence housekeeping's drift repairs,
now computed outside the write transaction. Claims in use now are marked
counted here and the counters set from them, once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from canopy.store.types import UTCDateTime

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTERS = (
    ("vcpus_claimed", "vcpus"),
    ("ram_mb_claimed", "ram_mb"),
    ("instances_claimed", "instances"),
    ("spend_per_hour_micros", "price_per_hour_micros"),
)


def upgrade() -> None:
    with op.batch_alter_table("claims") as batch:
        batch.add_column(
            sa.Column("counted", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("clouds") as batch:
        batch.add_column(
            sa.Column("counters_repaired", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("quota_usage") as batch:
        batch.add_column(sa.Column("repairs", sa.Integer(), nullable=False, server_default="0"))
    claims = sa.table(
        "claims",
        sa.column("cloud", sa.String()),
        sa.column("counted", sa.Boolean()),
        sa.column("starts_at", UTCDateTime()),
        sa.column("ends_at", UTCDateTime()),
        *(sa.column(amount, sa.BigInteger()) for _, amount in COUNTERS),
    )
    clouds = sa.table(
        "clouds", sa.column("name", sa.String()), *(sa.column(c) for c, _ in COUNTERS)
    )
    now = datetime.now(UTC)
    op.execute(
        claims.update()
        .where(
            claims.c.starts_at <= now, sa.or_(claims.c.ends_at.is_(None), claims.c.ends_at > now)
        )
        .values(counted=True)
    )
    op.execute(
        clouds.update().values(
            {
                counter: sa.func.coalesce(
                    sa.select(sa.func.sum(claims.c[amount]))
                    .where(claims.c.cloud == clouds.c.name, claims.c.counted.is_(True))
                    .scalar_subquery(),
                    0,
                )
                for counter, amount in COUNTERS
            }
        )
    )


def downgrade() -> None:
    with op.batch_alter_table("quota_usage") as batch:
        batch.drop_column("repairs")
    with op.batch_alter_table("clouds") as batch:
        batch.drop_column("counters_repaired")
    with op.batch_alter_table("claims") as batch:
        batch.drop_column("counted")
