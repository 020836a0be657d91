"""Servers and what hangs off them: groups, tags, user data, instance actions, keypairs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from canopy.store.models.base import Base, Retried


class ServerGroup(Base):
    __tablename__ = "server_groups"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[str] = mapped_column(String(64), default="")
    name: Mapped[str] = mapped_column(String(255))
    policy: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]


class Server(Retried, Base):
    """A VM asked for through canopy: desired state, observed state and where it lives."""

    __tablename__ = "servers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the canopy id
    project_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(64), default="")
    name: Mapped[str] = mapped_column(String(255))
    flavor_id: Mapped[str] = mapped_column(ForeignKey("flavors.id"))
    image_id: Mapped[str | None] = mapped_column(String(64))
    key_name: Mapped[str | None] = mapped_column(String(255))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    requested_zone: Mapped[str | None] = mapped_column(String(64))
    # The zone inside its cloud the server was placed in or reported in (None: none).
    zone: Mapped[str | None] = mapped_column(String(64))
    # The physical host the cloud last reported it on (drivers with the `hosts` ability);
    # registering a host for reservation is refused while servers are on it.
    host: Mapped[str | None] = mapped_column(String(255))
    group_id: Mapped[str | None] = mapped_column(
        ForeignKey("server_groups.id", ondelete="SET NULL")
    )
    hints: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # scheduler hints only
    # Booted with the hint `reservation=<id>` (a host reservation), and the reserved host
    # placement pinned it to (host_allocations' host; None until placed).
    reservation_id: Mapped[str | None] = mapped_column(String(64))
    reserved_host_id: Mapped[int | None] = mapped_column(Integer)
    # Nova's other user-set attributes. Tags are rows of `server_tags`; user data is in
    # `server_user_data`, so loading a server (or a page of them) never loads it.
    description: Mapped[str | None] = mapped_column(Text)
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    locked_reason: Mapped[str | None] = mapped_column(Text)
    config_drive: Mapped[bool] = mapped_column(Boolean, default=False)
    boot_from_volume: Mapped[bool] = mapped_column(Boolean, default=False)
    launch_index: Mapped[int] = mapped_column(Integer, default=0)

    desired_state: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    task_state: Mapped[str | None] = mapped_column(String(32))
    observed_state: Mapped[str | None] = mapped_column(String(16))
    observed_at: Mapped[datetime | None]
    reboot_requested: Mapped[int] = mapped_column(Integer, default=0)
    reboot_done: Mapped[int] = mapped_column(Integer, default=0)
    reboot_hard: Mapped[bool] = mapped_column(Boolean, default=False)

    cloud: Mapped[str | None] = mapped_column(ForeignKey("clouds.name"))
    remote_id: Mapped[str | None] = mapped_column(String(255))
    remote_recorded_at: Mapped[datetime | None]
    create_requested_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    attempt_log: Mapped[list[Any]] = mapped_column(JSON, default=list)
    schedule_deadline: Mapped[datetime | None]
    addresses: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    fault_code: Mapped[int | None] = mapped_column(Integer)
    fault_message: Mapped[str | None] = mapped_column(Text)
    fault_at: Mapped[datetime | None]

    # claimed_by, claim_expires_at, next_attempt_at, retries: from Retried (the lease).

    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    launched_at: Mapped[datetime | None]
    terminated_at: Mapped[datetime | None]
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    # Which controller acts next (domain.states.Phase), and when the last action was taken:
    # an observation made before `action_at` says nothing about the action's outcome.
    phase: Mapped[str] = mapped_column(String(16))
    action_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_servers_project_created", "project_id", "deleted", "created_at", "id"),
        Index("ix_servers_project_name", "project_id", "name", "deleted"),
        # `?status=`: one project's rows of one status, in page order (migration 0033).
        Index("ix_servers_project_status", "project_id", "status", "created_at", "id", "deleted"),
        Index("ix_servers_phase", "phase", "next_attempt_at"),
        Index("ix_servers_cloud_remote", "cloud", "remote_id"),
        Index("ix_servers_cloud_host", "cloud", "host"),
        Index("ix_servers_updated", "updated_at"),
        # changes-since of one project: a range of its rows, not a walk of all of them.
        Index("ix_servers_project_updated", "project_id", "updated_at"),
        # A project's rows in page order, (created_at, id), whatever `deleted` is (a
        # changes-since walk); updated_at and deleted ride along for its estimate.
        Index(
            "ix_servers_project_order", "project_id", "created_at", "id", "updated_at", "deleted"
        ),
        # Lists across projects, in page order. Never an index that leads with `deleted`:
        # SQLite without statistics would take it for selective (migration 0027).
        Index("ix_servers_created", "created_at", "id", "deleted"),
        # Deleted servers only (`--deleted` lists): partial, so no live-row query can use it.
        Index(
            "ix_servers_deleted_order",
            "deleted",
            "created_at",
            "id",
            sqlite_where=text("deleted IS 1"),
            postgresql_where=text("deleted IS true"),
        ),
        Index("ix_servers_group", "group_id"),
        Index("ix_servers_reservation", "reservation_id"),
    )


class ServerTag(Base):
    """One of a server's tags (Nova's os-server-tags); `?tags=` filters are joins on it."""

    __tablename__ = "server_tags"

    server_id: Mapped[str] = mapped_column(
        ForeignKey("servers.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(60), primary_key=True)

    __table_args__ = (Index("ix_server_tags_tag", "tag", "server_id"),)


class ServerUserData(Base):
    """A server's user data (base64, up to 64 KiB), apart from the row lists read."""

    __tablename__ = "server_user_data"

    server_id: Mapped[str] = mapped_column(
        ForeignKey("servers.id", ondelete="CASCADE"), primary_key=True
    )
    data: Mapped[str] = mapped_column(Text)


class InstanceAction(Base):
    """Nova's os-instance-actions: one user request against a server."""

    __tablename__ = "instance_actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    server_id: Mapped[str] = mapped_column(ForeignKey("servers.id", ondelete="CASCADE"), index=True)
    request_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    project_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(64), default="")
    message: Mapped[str | None] = mapped_column(Text)
    start_time: Mapped[datetime]
    updated_at: Mapped[datetime]


class InstanceActionEvent(Base):
    """One step a controller took for an action (schedule, spawn, stop, ...)."""

    __tablename__ = "instance_action_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    action_id: Mapped[int] = mapped_column(
        ForeignKey("instance_actions.id", ondelete="CASCADE"), index=True
    )
    event: Mapped[str] = mapped_column(String(64))
    result: Mapped[str | None] = mapped_column(String(16))  # Success | Error | None (running)
    details: Mapped[str | None] = mapped_column(Text)
    host: Mapped[str | None] = mapped_column(String(64))
    start_time: Mapped[datetime]
    finish_time: Mapped[datetime | None]


class Keypair(Base):
    """A Nova keypair, owned by a user; pushed to a cloud the first time a server uses it."""

    __tablename__ = "keypairs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(64))
    project_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(16), default="ssh")
    public_key: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("user_id", "name", name="uq_keypairs_user_name"),)


class KeypairPush(Base):
    """Where a keypair has been imported, and under which remote name."""

    __tablename__ = "keypair_pushes"

    keypair_id: Mapped[int] = mapped_column(
        ForeignKey("keypairs.id", ondelete="CASCADE"), primary_key=True
    )
    cloud: Mapped[str] = mapped_column(ForeignKey("clouds.name"), primary_key=True)
    remote_name: Mapped[str] = mapped_column(String(255))
    pushed_at: Mapped[datetime]
