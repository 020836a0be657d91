"""application credentials (Keystone's), and the credential a token was issued through

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-29 03:00:00.000000

`application_credentials`: a user's named secrets (Argon2id hashes) for one project with a
subset of the user's roles there; `tokens.app_cred_id`: the credential a token came from,
so its roles stay the credential's and it dies with it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "application_credentials",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "user_id",
            sa.String(64),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "project_id",
            sa.String(64),
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("secret_hash", sa.Text(), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("unrestricted", sa.Boolean(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("user_id", "name", name="uq_app_creds_user_name"),
    )
    op.create_index("ix_application_credentials_user_id", "application_credentials", ["user_id"])
    with op.batch_alter_table("tokens") as b:
        b.add_column(sa.Column("app_cred_id", sa.String(64), nullable=True))


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN in place (see 0005).
    with op.batch_alter_table("tokens", recreate="never") as b:
        b.drop_column("app_cred_id")
    op.drop_index("ix_application_credentials_user_id", table_name="application_credentials")
    op.drop_table("application_credentials")
