"""The catalogue: clouds (with their usage counters), flavors, images, and how each
cloud offers them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ColumnElement,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    case,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from canopy.store.models.base import Base

# The longest flavor id (Nova's `flavorid` column, and what its flavor create accepts);
# every column that holds one is this wide (migration 0026).
FLAVOR_ID_LENGTH = 255


class Cloud(Base):
    """One backend. Its usage counters move only in the same transaction as its claims.

    The `*_claimed` counters and `spend_per_hour_micros` are the sums of the claims marked
    `counted`, which are the claims in use now once their starts and ends are settled
    (store/claim_counts.py); capacity over a time window is asked of the claims themselves
    (store.claims.peak_usage).
    """

    __tablename__ = "clouds"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    driver: Mapped[str] = mapped_column(String(32))
    tier: Mapped[int] = mapped_column(Integer, default=0)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    healthy: Mapped[bool] = mapped_column(Boolean, default=True)
    health_message: Mapped[str] = mapped_column(Text, default="")
    last_ok_at: Mapped[datetime | None]
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    blocklisted_until: Mapped[datetime | None]
    blocklist_reason: Mapped[str] = mapped_column(Text, default="")
    # What canopy may fill (None: unbounded or unknown): the cloud's total less what
    # others use there, which is kept apart (None: the cloud does not say what is free);
    # both written by the inventory (domain/share.py, migration 0028).
    vcpus_capacity: Mapped[int | None] = mapped_column(Integer)
    ram_mb_capacity: Mapped[int | None] = mapped_column(Integer)
    instances_capacity: Mapped[int | None] = mapped_column(Integer)
    vcpus_others: Mapped[int | None] = mapped_column(Integer)
    ram_mb_others: Mapped[int | None] = mapped_column(Integer)
    instances_others: Mapped[int | None] = mapped_column(Integer)
    # When the inventory last read the cloud's capacity and flavors (None: never, and
    # until then the cloud is not placeable); and whether it boots canopy's image ids
    # without a mapping (a driver without fixed images, e.g. the sim).
    capacity_updated_at: Mapped[datetime | None]
    any_image: Mapped[bool] = mapped_column(Boolean, default=False)
    vcpus_claimed: Mapped[int] = mapped_column(Integer, default=0)
    ram_mb_claimed: Mapped[int] = mapped_column(Integer, default=0)
    instances_claimed: Mapped[int] = mapped_column(Integer, default=0)
    # Summed price per hour of the claims counted above, in micro-units (domain.money).
    spend_per_hour_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    # How many drift repairs housekeeping applied to the counters: its fence (a repair
    # applies only if no other one did since the snapshot it computed the drift from).
    counters_repaired: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    credentials: Mapped[bytes | None] = mapped_column(LargeBinary)  # Fernet token, never shown
    # When the cloud left the config: it drains (its servers can still be deleted) and is
    # `removed` once it holds none. Null while the cloud is configured.
    removed_at: Mapped[datetime | None]
    # The cloud's non-secret config (its [[clouds]] entry without the name), written at
    # every reconciliation, so a worker can build its driver after it left the config.
    driver_settings: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The zones inside the cloud as its driver last reported them (null: not asked yet),
    # and what its driver cannot do (ability -> reason); both written by the workers.
    zones: Mapped[list[Any] | None] = mapped_column(JSON)
    zones_updated_at: Mapped[datetime | None]
    abilities: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The physical hosts its driver reports (the `hosts` ability), written by the
    # inventory: [{name, vcpus, memory_mb, local_gb, zone}]; null: none reported.
    hosts: Mapped[list[Any] | None] = mapped_column(JSON)
    # Who owns the cloud: "config" (canopy.toml, edited in the file) or "api" (added at run
    # time); and a counter moved by every change that needs its driver rebuilt.
    source: Mapped[str] = mapped_column(String(16), default="config", server_default="config")
    generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Installation(Base):
    """This installation's id: one row (`singleton` is always 1), made by migration 0012
    or on first use (store/installation.py). It tags every remote server canopy creates,
    so that installations sharing an account never touch each other's servers."""

    __tablename__ = "installation"

    singleton: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]


class Flavor(Base):
    """A size servers are booted with: from the config, made through Nova's flavor API by a
    cloud admin, or a reservation's private flavor.

    A flavor deleted while server rows still name it keeps its row (`deleted_at` set):
    hidden from every list and look-up, it still sizes those servers, as Nova's servers
    keep the flavor they were booted with. Its name is unique among the flavors that are
    not deleted.
    """

    __tablename__ = "flavors"
    __table_args__ = (
        Index(
            "uq_flavors_live_name",
            "name",
            unique=True,
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(FLAVOR_ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    vcpus: Mapped[int] = mapped_column(Integer)
    ram_mb: Mapped[int] = mapped_column(Integer)
    disk_gb: Mapped[int] = mapped_column(Integer, default=0)
    is_public: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    description: Mapped[str | None] = mapped_column(Text)
    ephemeral_gb: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    swap_mb: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    rxtx_factor: Mapped[float] = mapped_column(Float, default=1.0, server_default="1.0")
    # Nova's extra specs, key -> string value (null: none).
    extra_specs: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    deleted_at: Mapped[datetime | None]

    @property
    def placement_name(self) -> str:
        """The name placement knows the flavor by (its prices, its capacity blocks): a
        deleted flavor's name may belong to a new flavor now, so it goes by its id."""
        return self.name if self.deleted_at is None else self.id


def placement_name() -> ColumnElement[str]:
    """`Flavor.placement_name` in SQL."""
    return case((Flavor.deleted_at.is_(None), Flavor.name), else_=Flavor.id)


class FlavorProject(Base):
    """A project a private flavor is shared with (Nova's flavor access list)."""

    __tablename__ = "flavor_projects"

    flavor_id: Mapped[str] = mapped_column(
        ForeignKey("flavors.id", ondelete="CASCADE"), primary_key=True
    )
    project_id: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class FlavorMapping(Base):
    """How one cloud offers a canopy flavor, and what it costs there per hour."""

    __tablename__ = "flavor_mappings"

    cloud: Mapped[str] = mapped_column(
        ForeignKey("clouds.name", ondelete="CASCADE"), primary_key=True
    )
    flavor_id: Mapped[str] = mapped_column(
        ForeignKey("flavors.id", ondelete="CASCADE"), primary_key=True
    )
    remote_flavor: Mapped[str] = mapped_column(String(255))
    price_per_hour_micros: Mapped[int] = mapped_column(BigInteger, default=0)


class Image(Base):
    __tablename__ = "images"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    status: Mapped[str] = mapped_column(String(32), default="active")
    visibility: Mapped[str] = mapped_column(String(32), default="public")
    owner: Mapped[str | None] = mapped_column(String(64))
    min_disk: Mapped[int] = mapped_column(Integer, default=0)
    min_ram: Mapped[int] = mapped_column(Integer, default=0)
    disk_format: Mapped[str] = mapped_column(String(32), default="qcow2")
    container_format: Mapped[str] = mapped_column(String(32), default="bare")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ImageMapping(Base):
    __tablename__ = "image_mappings"

    cloud: Mapped[str] = mapped_column(
        ForeignKey("clouds.name", ondelete="CASCADE"), primary_key=True
    )
    image_id: Mapped[str] = mapped_column(
        ForeignKey("images.id", ondelete="CASCADE"), primary_key=True
    )
    remote_image: Mapped[str] = mapped_column(String(255))
