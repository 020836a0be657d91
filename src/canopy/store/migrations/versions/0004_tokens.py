"""token audit chains and the login throttle

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing tokens keep null in both columns: each is the first of its own chain.
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("parent_audit_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("audit_chain_id", sa.String(length=64), nullable=True))
        batch.create_index("ix_tokens_parent_audit_id", ["parent_audit_id"], unique=False)
    op.create_table(
        "login_failures",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index(
        "ix_login_failures_last_failure_at", "login_failures", ["last_failure_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_login_failures_last_failure_at", table_name="login_failures")
    op.drop_table("login_failures")
    with op.batch_alter_table("tokens") as batch:
        batch.drop_index("ix_tokens_parent_audit_id")
        batch.drop_column("audit_chain_id")
        batch.drop_column("parent_audit_id")
