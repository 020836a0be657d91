"""a trigram index on servers.name for ?name= patterns (PostgreSQL with pg_trgm)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 00:00:00.000000

`openstack server list --name web` sends a regular expression searched anywhere in the
name; no B-tree answers that. PostgreSQL's pg_trgm extension indexes a text's trigrams,
and its GIN operator class answers `name ~ pattern` from the index (PostgreSQL extracts
the trigrams every match must contain from the pattern itself), with the pattern still
checked on each row found, so the answer is unchanged.

pg_trgm ships with PostgreSQL (contrib) and is a trusted extension: a database owner may
create it. Where it cannot be created (not installed, or not allowed), this migration says
so in the log and leaves the index out: the filter then reads the project's rows under
`regex_timeout_seconds`, as before. SQLite gets nothing here (no such index exists there);
it tests a literal every match must contain first (services/regex_literals.py).

The index is not in the models (it is optional and PostgreSQL-only): `store.migrate`
names it among the indexes autogenerate leaves alone.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("canopy.migrate")
INDEX = "ix_servers_name_trgm"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    # In a savepoint: a refused CREATE EXTENSION must not abort the migration's transaction.
    try:
        with bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except sa.exc.DBAPIError as e:
        log.warning(
            "pg_trgm could not be created (%s): ?name= patterns are answered without the "
            "trigram index. A superuser may add it later: CREATE EXTENSION pg_trgm; "
            "CREATE INDEX %s ON servers USING gin (name gin_trgm_ops)",
            str(e.orig).strip().splitlines()[0] if e.orig else e,
            INDEX,
        )
        return
    op.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON servers USING gin (name gin_trgm_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP INDEX IF EXISTS {INDEX}")
