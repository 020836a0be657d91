"""clouds at run time and the installation id

Revision ID: 0012
Revises: 0009
Create Date: 2026-12-03 00:12:00.000000

- `clouds.source`: who owns the cloud: `config` (a [[clouds]] entry of canopy.toml, edited
  in the file) or `api` (added at run time by `canopy cloud add` / POST /canopy/v1/clouds).
  Existing rows came from the config.
- `clouds.generation`: moved on by every change that needs the cloud's driver rebuilt
  (options, credentials); the workers compare it with the driver they hold.
- `installation`: one row, this installation's id, generated here, once. Every remote
  server canopy creates is tagged with it; sync adopts and collects as leaks only servers
  carrying it (see docs/architecture.md for servers made before this revision).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("clouds") as batch:
        batch.add_column(
            sa.Column("source", sa.String(16), nullable=False, server_default="config")
        )
        batch.add_column(sa.Column("generation", sa.Integer(), nullable=False, server_default="0"))
    table = op.create_table(
        "installation",
        sa.Column("singleton", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.bulk_insert(
        table, [{"singleton": 1, "id": uuid.uuid4().hex, "created_at": datetime.now(UTC)}]
    )


def downgrade() -> None:
    op.drop_table("installation")
    # ALTER TABLE ... DROP COLUMN in place (see 0005).
    with op.batch_alter_table("clouds", recreate="never") as batch:
        batch.drop_column("generation")
        batch.drop_column("source")
