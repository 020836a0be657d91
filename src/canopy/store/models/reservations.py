"""The tables of reservations: leases, their reservations and their events (Blazar's model).

A lease is a leased row (`Retried`) for the lease controller: `next_attempt_at` is the time
of its next event still to run (NULL: nothing left), so "due" is the runtime's usual
`next_attempt_at <= now`. The capacity a reservation holds is in `claims` (owned by the
reservation, over the lease's window); a reservation's private flavor is a `flavors` row
whose id is the reservation's id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from canopy.store.models.base import Base, Retried
from canopy.store.models.clouds import FLAVOR_ID_LENGTH


class Lease(Retried, Base):
    """A window of time in which a project holds capacity (Blazar's lease)."""

    __tablename__ = "leases"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(64), default="")
    name: Mapped[str] = mapped_column(String(255))
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))
    degraded: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # Servers the lease carries (lease_servers) are booted at `boot_at`, `boot_lead_seconds`
    # before the start; `booted_at` is when their rows were written (NULL: not yet).
    boot_at: Mapped[datetime | None]
    boot_lead_seconds: Mapped[float | None] = mapped_column(Float)
    booted_at: Mapped[datetime | None]

    __table_args__ = (
        # The client resolves a lease by name, so a name is unique in its project.
        UniqueConstraint("project_id", "name", name="uq_leases_project_name"),
        # The lease controller's "what is due next" is one seek.
        Index("ix_leases_next_attempt_at", "next_attempt_at"),
    )


class Reservation(Base):
    """Capacity of one kind inside a lease: `amount` servers of one size.

    `placement` is where the capacity is held and why: a list of
    `{"cloud", "amount", "reason"}`, one per cloud.
    """

    __tablename__ = "reservations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    lease_id: Mapped[str] = mapped_column(ForeignKey("leases.id", ondelete="CASCADE"), index=True)
    resource_type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(Integer)
    vcpus: Mapped[int] = mapped_column(Integer)
    memory_mb: Mapped[int] = mapped_column(Integer)
    disk_gb: Mapped[int] = mapped_column(Integer)
    affinity: Mapped[bool | None] = mapped_column(Boolean)
    resource_properties: Mapped[str] = mapped_column(Text, default="")
    source_flavor_id: Mapped[str | None] = mapped_column(
        String(FLAVOR_ID_LENGTH)
    )  # flavor:instance's
    placement: Mapped[list[Any]] = mapped_column(default=list)
    # physical:host only (NULL otherwise): how many hosts, which ones, what before the end.
    min_hosts: Mapped[int | None] = mapped_column(Integer)
    max_hosts: Mapped[int | None] = mapped_column(Integer)
    hypervisor_properties: Mapped[str | None] = mapped_column(Text)
    before_end: Mapped[str | None] = mapped_column(String(16))
    missing_resources: Mapped[bool] = mapped_column(Boolean, default=False)
    resources_changed: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class LeaseEvent(Base):
    """A moment in a lease's life: start_lease, before_end_lease, end_lease."""

    __tablename__ = "lease_events"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    lease_id: Mapped[str] = mapped_column(ForeignKey("leases.id", ondelete="CASCADE"), index=True)
    event_type: Mapped[str] = mapped_column(String(32))
    time: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))
    done_at: Mapped[datetime | None]  # when it ran: its lateness is done_at - time
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class LeaseServer(Base):
    """Servers a lease carries (a Canopy extension): booted into its reservation ahead of
    the start, so they are ACTIVE when it starts. `server_ids` are the servers made."""

    __tablename__ = "lease_servers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    lease_id: Mapped[str] = mapped_column(ForeignKey("leases.id", ondelete="CASCADE"), index=True)
    reservation_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    image_id: Mapped[str] = mapped_column(String(64))
    key_name: Mapped[str | None] = mapped_column(String(255))
    user_data: Mapped[str | None] = mapped_column(Text)
    count: Mapped[int] = mapped_column(Integer)
    server_ids: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime]
