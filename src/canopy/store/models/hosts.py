"""Hosts registered for reservation (Blazar's os-hosts): a physical host of a cloud whose
driver reports its hosts (`clouds.hosts`, written by the inventory), named by an
administrator with extra capabilities of their own."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from canopy.store.models.base import Base


class ReservableHost(Base):
    """One registered host. Its id is a whole number, as Blazar's (the client takes
    anything else for a name)."""

    __tablename__ = "reservable_hosts"
    __table_args__ = (UniqueConstraint("cloud", "host", name="uq_reservable_hosts_cloud_host"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cloud: Mapped[str] = mapped_column(String(64))
    host: Mapped[str] = mapped_column(String(255))  # the cloud's own name for it
    zone: Mapped[str] = mapped_column(String(255), default="")
    hypervisor_type: Mapped[str] = mapped_column(String(32))  # the cloud's driver
    vcpus: Mapped[int] = mapped_column(Integer)
    memory_mb: Mapped[int] = mapped_column(Integer)
    local_gb: Mapped[int] = mapped_column(Integer)
    reservable: Mapped[bool] = mapped_column(Boolean, default=True)
    # Extra capabilities (key -> string value), shown as extra keys of the host.
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime | None]


class HostAllocation(Base):
    """A registered host held by a host reservation (Blazar's computehost_allocations).

    `start_at`/`end_at` are the lease's window, copied so that "is this host free over
    [start, end)" is one indexed query; a lease move rewrites them. Rows live while the
    lease does: its end or delete removes them (as Blazar's on_end does).
    """

    __tablename__ = "host_allocations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    reservation_id: Mapped[str] = mapped_column(ForeignKey("reservations.id", ondelete="CASCADE"))
    host_id: Mapped[int] = mapped_column(ForeignKey("reservable_hosts.id"))
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    created_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_host_allocations_reservation", "reservation_id"),
        Index("ix_host_allocations_host_window", "host_id", "start_at", "end_at"),
    )
