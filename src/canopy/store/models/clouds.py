"""The catalogue: clouds (with their usage counters), flavors, images, and how each
cloud offers them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from canopy.store.models.base import Base


class Cloud(Base):
    """One backend. Its usage counters move only in the same transaction as its claims.

    The `*_claimed` counters and `spend_per_hour_micros` are a cache of the claims in use
    now (store.claims.usage_at recomputes them); capacity over a time window is asked of
    the claims themselves (store.claims.peak_usage).
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
    vcpus_capacity: Mapped[int | None] = mapped_column(Integer)
    ram_mb_capacity: Mapped[int | None] = mapped_column(Integer)
    instances_capacity: Mapped[int | None] = mapped_column(Integer)
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
    __tablename__ = "flavors"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    vcpus: Mapped[int] = mapped_column(Integer)
    ram_mb: Mapped[int] = mapped_column(Integer)
    disk_gb: Mapped[int] = mapped_column(Integer, default=0)
    is_public: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]


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
