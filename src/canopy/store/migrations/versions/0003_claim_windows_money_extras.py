"""claim windows, money in micro-units, server attributes out of the hints

- claims: owned by a server or a reservation (exactly one, `ck_claims_one_owner`),
  `starts_at` NOT NULL (existing claims start at their `created_at`), the
  `ix_claims_cloud_window` index for the peak-usage query.
- money: `price_per_hour` / `spend_per_hour` floats become `*_micros` integers; each
  float is read through its shortest decimal text and rounded to the micro-unit; a
  cloud's spend is recomputed from its claims, which drops any float drift.
- servers: description, tags, user data and the other attributes kept under the `_canopy`
  key of `hints` move to columns, `server_tags` and `server_user_data`; `hints` keeps only
  the scheduler hints the user sent.

On SQLite the parent tables (`clouds`, `servers`) are never recreated: with foreign keys
on, dropping a parent would cascade into its children. Their columns are added and
dropped with ALTER TABLE (SQLite >= 3.35); only `claims` (no children) is rebuilt, for its
check constraint.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 16:40:00
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EXTRAS_KEY = "_canopy"  # where 0002 kept the server attributes, inside `hints`
BATCH = 500

_servers = sa.table(
    "servers",
    sa.column("id", sa.String),
    sa.column("hints", sa.JSON),
    sa.column("description", sa.Text),
    sa.column("locked", sa.Boolean),
    sa.column("config_drive", sa.Boolean),
    sa.column("boot_from_volume", sa.Boolean),
    sa.column("launch_index", sa.Integer),
)
_tags = sa.table("server_tags", sa.column("server_id", sa.String), sa.column("tag", sa.String))
_user_data = sa.table(
    "server_user_data", sa.column("server_id", sa.String), sa.column("data", sa.Text)
)


def _micros(amount: Any) -> int:
    """A float amount in micro-units, exactly as its decimal text says (frozen here)."""
    if amount is None:
        return 0
    value = Decimal(repr(float(amount))).quantize(Decimal("0.000001"), ROUND_HALF_EVEN)
    return int(value.scaleb(6))


def _drop_plain_column(table: str, column: str) -> None:
    """ALTER TABLE ... DROP COLUMN on both backends, never a table rebuild."""
    if op.get_bind().dialect.name == "sqlite":
        op.execute(sa.text(f'ALTER TABLE "{table}" DROP COLUMN "{column}"'))
    else:
        op.drop_column(table, column)


def _claim_prices_to_micros() -> None:
    conn = op.get_bind()
    t = sa.table(
        "claims",
        sa.column("id", sa.Integer),
        sa.column("price_per_hour", sa.Float),
        sa.column("price_per_hour_micros", sa.BigInteger),
    )
    rows = conn.execute(sa.select(t.c.id, t.c.price_per_hour)).all()
    if rows:
        conn.execute(
            t.update()
            .where(t.c.id == sa.bindparam("k"))
            .values(price_per_hour_micros=sa.bindparam("m")),
            [{"k": k, "m": _micros(v)} for k, v in rows],
        )


def _flavor_prices_to_micros() -> None:
    conn = op.get_bind()
    t = sa.table(
        "flavor_mappings",
        sa.column("cloud", sa.String),
        sa.column("flavor_id", sa.String),
        sa.column("price_per_hour", sa.Float),
        sa.column("price_per_hour_micros", sa.BigInteger),
    )
    rows = conn.execute(sa.select(t.c.cloud, t.c.flavor_id, t.c.price_per_hour)).all()
    if rows:
        conn.execute(
            t.update()
            .where(t.c.cloud == sa.bindparam("c"), t.c.flavor_id == sa.bindparam("f"))
            .values(price_per_hour_micros=sa.bindparam("m")),
            [{"c": c, "f": f, "m": _micros(p)} for c, f, p in rows],
        )


def _move_server_extras() -> None:
    """Each server's `hints["_canopy"]` into its columns, tag rows and user data row."""
    conn = op.get_bind()
    last = ""
    while True:
        rows = conn.execute(
            sa.select(_servers.c.id, _servers.c.hints)
            .where(_servers.c.id > last)
            .order_by(_servers.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        last = rows[-1][0]
        for sid, hints in rows:
            if not isinstance(hints, dict) or EXTRAS_KEY not in hints:
                continue
            hints = dict(hints)
            extras = hints.pop(EXTRAS_KEY)
            extras = extras if isinstance(extras, dict) else {}
            conn.execute(
                _servers.update()
                .where(_servers.c.id == sid)
                .values(
                    hints=hints,
                    description=extras.get("description"),
                    locked=bool(extras.get("locked", False)),
                    config_drive=bool(extras.get("config_drive", False)),
                    boot_from_volume=bool(extras.get("boot_from_volume", False)),
                    launch_index=int(extras.get("launch_index") or 0),
                )
            )
            tags = sorted({t for t in extras.get("tags") or [] if isinstance(t, str)})
            if tags:
                conn.execute(_tags.insert(), [{"server_id": sid, "tag": t} for t in tags])
            if extras.get("user_data") is not None:
                conn.execute(
                    _user_data.insert().values(server_id=sid, data=str(extras["user_data"]))
                )


def upgrade() -> None:
    op.create_table(
        "server_tags",
        sa.Column("server_id", sa.String(length=64), nullable=False),
        sa.Column("tag", sa.String(length=60), nullable=False),
        sa.ForeignKeyConstraint(["server_id"], ["servers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("server_id", "tag"),
    )
    op.create_index("ix_server_tags_tag", "server_tags", ["tag", "server_id"], unique=False)
    op.create_table(
        "server_user_data",
        sa.Column("server_id", sa.String(length=64), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["server_id"], ["servers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("server_id"),
    )

    # Servers: new columns (ADD COLUMN only), then the attributes out of the hints.
    for column in (
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("locked", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("locked_reason", sa.Text(), nullable=True),
        sa.Column("config_drive", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("boot_from_volume", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("launch_index", sa.Integer(), server_default="0", nullable=False),
    ):
        op.add_column("servers", column)
    _move_server_extras()

    # Money: flavor prices.
    op.add_column(
        "flavor_mappings",
        sa.Column("price_per_hour_micros", sa.BigInteger(), server_default="0", nullable=False),
    )
    _flavor_prices_to_micros()
    _drop_plain_column("flavor_mappings", "price_per_hour")

    # Claims: owner, window, money; rebuilt on SQLite for the check constraint.
    with op.batch_alter_table("claims", recreate="never") as batch_op:
        batch_op.add_column(sa.Column("reservation_id", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("price_per_hour_micros", sa.BigInteger(), server_default="0", nullable=False)
        )
    _claim_prices_to_micros()
    op.execute(sa.text("UPDATE claims SET starts_at = created_at WHERE starts_at IS NULL"))
    with op.batch_alter_table("claims", schema=None) as batch_op:
        batch_op.alter_column("server_id", existing_type=sa.String(length=64), nullable=True)
        batch_op.alter_column("starts_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.drop_index("ix_claims_cloud")
        batch_op.create_index(
            "ix_claims_cloud_window", ["cloud", "starts_at", "ends_at"], unique=False
        )
        batch_op.create_index("ix_claims_reservation_id", ["reservation_id"], unique=False)
        batch_op.create_check_constraint(
            "ck_claims_one_owner", "(server_id IS NULL) <> (reservation_id IS NULL)"
        )
        batch_op.drop_column("price_per_hour")

    # Clouds: the spend counter, recomputed from the claims it caches.
    op.add_column(
        "clouds",
        sa.Column("spend_per_hour_micros", sa.BigInteger(), server_default="0", nullable=False),
    )
    op.execute(
        sa.text(
            "UPDATE clouds SET spend_per_hour_micros = COALESCE((SELECT "
            "SUM(claims.price_per_hour_micros) FROM claims WHERE claims.cloud = clouds.name), 0)"
        )
    )
    _drop_plain_column("clouds", "spend_per_hour")


def _restore_server_extras() -> None:
    """The reverse of `_move_server_extras`: the attributes back under hints["_canopy"]."""
    conn = op.get_bind()
    tags: dict[str, list[str]] = {}
    for sid, tag in conn.execute(
        sa.select(_tags.c.server_id, _tags.c.tag).order_by(_tags.c.server_id, _tags.c.tag)
    ):
        tags.setdefault(sid, []).append(tag)
    last = ""
    while True:
        rows = conn.execute(
            sa.select(
                _servers.c.id,
                _servers.c.hints,
                _servers.c.description,
                _servers.c.locked,
                _servers.c.config_drive,
                _servers.c.boot_from_volume,
                _servers.c.launch_index,
            )
            .where(_servers.c.id > last)
            .order_by(_servers.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        last = rows[-1][0]
        for sid, hints, description, locked, config_drive, from_volume, index in rows:
            data = conn.execute(
                sa.select(_user_data.c.data).where(_user_data.c.server_id == sid)
            ).scalar_one_or_none()
            extras: dict[str, Any] = {
                k: v
                for k, v in (
                    ("description", description),
                    ("tags", tags.get(sid)),
                    ("user_data", data),
                    ("locked", locked or None),
                    ("config_drive", config_drive or None),
                    ("boot_from_volume", from_volume or None),
                    ("launch_index", index or None),
                )
                if v is not None
            }
            if extras:
                conn.execute(
                    _servers.update()
                    .where(_servers.c.id == sid)
                    .values(hints={**(hints or {}), EXTRAS_KEY: extras})
                )


def downgrade() -> None:
    op.add_column(
        "clouds", sa.Column("spend_per_hour", sa.Float(), server_default="0", nullable=False)
    )
    op.execute(sa.text("UPDATE clouds SET spend_per_hour = spend_per_hour_micros / 1000000.0"))
    _drop_plain_column("clouds", "spend_per_hour_micros")

    # A reservation's claim has no place in 0002's schema (server_id NOT NULL).
    op.execute(sa.text("DELETE FROM claims WHERE server_id IS NULL"))
    with op.batch_alter_table("claims", recreate="never") as batch_op:
        batch_op.add_column(
            sa.Column("price_per_hour", sa.Float(), server_default="0", nullable=False)
        )
    op.execute(sa.text("UPDATE claims SET price_per_hour = price_per_hour_micros / 1000000.0"))
    with op.batch_alter_table("claims", schema=None) as batch_op:
        batch_op.drop_constraint("ck_claims_one_owner", type_="check")
        batch_op.drop_index("ix_claims_reservation_id")
        batch_op.drop_index("ix_claims_cloud_window")
        batch_op.create_index("ix_claims_cloud", ["cloud"], unique=False)
        batch_op.alter_column("starts_at", existing_type=sa.DateTime(timezone=True), nullable=True)
        batch_op.alter_column("server_id", existing_type=sa.String(length=64), nullable=False)
        batch_op.drop_column("price_per_hour_micros")
        batch_op.drop_column("reservation_id")

    op.add_column(
        "flavor_mappings",
        sa.Column("price_per_hour", sa.Float(), server_default="0", nullable=False),
    )
    op.execute(
        sa.text("UPDATE flavor_mappings SET price_per_hour = price_per_hour_micros / 1000000.0")
    )
    _drop_plain_column("flavor_mappings", "price_per_hour_micros")

    _restore_server_extras()
    for column in (
        "launch_index",
        "boot_from_volume",
        "config_drive",
        "locked_reason",
        "locked",
        "description",
    ):
        _drop_plain_column("servers", column)
    op.drop_table("server_user_data")
    op.drop_index("ix_server_tags_tag", table_name="server_tags")
    op.drop_table("server_tags")
