"""flavor ids of up to 255 characters, as Nova's

Revision ID: 0026
Revises: 0025
Create Date: 2026-11-29 10:00:00.000000

Nova takes a flavor id of 1 to 255 characters on create (its `flavorid` column is
String(255)); canopy's were 64. Every column that holds a flavor id widens to 255:
`flavors.id`, the foreign keys naming it (`servers`, `flavor_mappings`, `flavor_projects`,
`capacity_blocks`) and the copy a flavor:instance reservation keeps of the public flavor
it was made from (`reservations.source_flavor_id`, no foreign key: that flavor may be gone).

On PostgreSQL widening a VARCHAR is a catalog change (no rewrite, no revalidation). SQLite
does not enforce lengths, but its tables are rebuilt (batch mode) so that the declared
schema is the models' on both. Going down refuses, naming them, while any id is longer
than 64: truncating an id would merge or orphan rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from alembic.util import CommandError

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD, NEW = 64, 255
# (table, column, nullable): every column holding a flavor id, the referenced one first.
COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("flavors", "id", False),
    ("servers", "flavor_id", False),
    ("flavor_mappings", "flavor_id", False),
    ("flavor_projects", "flavor_id", False),
    ("capacity_blocks", "flavor_id", False),
    ("reservations", "source_flavor_id", True),
)
SHOWN = 5  # ids named in the refusal


def _resize(old: int, new: int) -> None:
    for table, column, nullable in COLUMNS:
        with op.batch_alter_table(table) as b:
            b.alter_column(
                column,
                type_=sa.String(new),
                existing_type=sa.String(old),
                existing_nullable=nullable,
            )


def upgrade() -> None:
    _resize(OLD, NEW)


def too_long() -> dict[str, list[str]]:
    """Per `table.column`, the values longer than the old width (at most SHOWN of each)."""
    conn = op.get_bind()
    out: dict[str, list[str]] = {}
    for table, column, _ in COLUMNS:
        col = sa.column(column, sa.String)
        rows = conn.execute(
            sa.select(col)
            .select_from(sa.table(table, col))
            .where(sa.func.length(col) > OLD)
            .distinct()
            .order_by(col)
            .limit(SHOWN + 1)
        ).scalars()
        found = list(rows)
        if found:
            out[f"{table}.{column}"] = found
    return out


def downgrade() -> None:
    found = too_long()
    if found:
        parts = []
        for where, ids in found.items():
            shown = ", ".join(repr(i) for i in ids[:SHOWN])
            more = ", ..." if len(ids) > SHOWN else ""
            parts.append(f"{where}: {shown}{more}")
        raise CommandError(
            f"Cannot downgrade below 0026: flavor ids longer than {OLD} characters do not "
            f"fit the old columns ({'; '.join(parts)}). Delete those flavors, and the "
            "servers and reservations that use them, first; nothing was changed."
        )
    _resize(NEW, OLD)
