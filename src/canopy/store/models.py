"""The tables. Every controller-visible row carries desired and observed state plus a lease."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from canopy.store.types import UTCDateTime


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class Leased:
    """The lease a controller takes on a row while it acts on it (see store/leases.py).

    Any table with these columns can be leased, renewed, fenced and released by the
    controller runtime, whatever else its rows hold.
    """

    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claim_expires_at: Mapped[datetime | None]


class Retried(Leased):
    """A leased row whose failed steps are retried later: when, and how many times so far."""

    next_attempt_at: Mapped[datetime | None]
    retries: Mapped[int] = mapped_column(Integer, default=0)


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    domain_id: Mapped[str] = mapped_column(String(64), default="default")
    description: Mapped[str] = mapped_column(Text, default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("domain_id", "name", name="uq_projects_domain_name"),)


class Quota(Base):
    """A per-project limit; a missing row means the default from settings."""

    __tablename__ = "quotas"

    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    resource: Mapped[str] = mapped_column(String(64), primary_key=True)
    hard_limit: Mapped[int] = mapped_column(Integer)


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
    capacity_updated_at: Mapped[datetime | None]
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
    any_sim: Mapped[bool] = mapped_column(Boolean, default=True)
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
    group_id: Mapped[str | None] = mapped_column(
        ForeignKey("server_groups.id", ondelete="SET NULL")
    )
    hints: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # scheduler hints only
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
        Index("ix_servers_project_created", "project_id", "deleted", "created_at"),
        Index("ix_servers_phase", "phase", "next_attempt_at"),
        Index("ix_servers_cloud_remote", "cloud", "remote_id"),
        Index("ix_servers_updated", "updated_at"),
        Index("ix_servers_deleted_created", "deleted", "created_at"),
        Index("ix_servers_group", "group_id"),
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


class Placement(Base):
    """One scheduling decision for one server attempt, with its explanation."""

    __tablename__ = "placements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    server_id: Mapped[str] = mapped_column(ForeignKey("servers.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    cloud: Mapped[str | None] = mapped_column(String(64))
    alternates: Mapped[list[Any]] = mapped_column(JSON, default=list)
    explanation: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reason: Mapped[str] = mapped_column(Text, default="")
    worker: Mapped[str] = mapped_column(String(128), default="")  # which worker decided
    created_at: Mapped[datetime]


class Claim(Base):
    """Capacity held on a cloud over a window of time, for a server or for a reservation.

    Exactly one owner is set (`ck_claims_one_owner`). A server's claim starts when it is
    placed and is open-ended (`ends_at` NULL) until it is released (the row is deleted).
    A reservation's claim spans its lease; reservations have no table yet, so
    `reservation_id` references nothing until the issue that adds them gives it a key.
    The window is half-open: the claim holds [starts_at, ends_at).
    """

    __tablename__ = "claims"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    server_id: Mapped[str | None] = mapped_column(
        ForeignKey("servers.id", ondelete="CASCADE"), unique=True
    )
    reservation_id: Mapped[str | None] = mapped_column(String(64), index=True)
    cloud: Mapped[str] = mapped_column(ForeignKey("clouds.name"))
    vcpus: Mapped[int] = mapped_column(Integer)
    ram_mb: Mapped[int] = mapped_column(Integer)
    disk_gb: Mapped[int] = mapped_column(Integer, default=0)
    instances: Mapped[int] = mapped_column(Integer, default=1)
    price_per_hour_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime | None]
    created_at: Mapped[datetime]

    __table_args__ = (
        CheckConstraint(
            "(server_id IS NULL) <> (reservation_id IS NULL)", name="ck_claims_one_owner"
        ),
        # The peak-usage query reads one cloud's claims that start before a window ends;
        # the EXISTS "does anything start later" is one seek.
        Index("ix_claims_cloud_window", "cloud", "starts_at", "ends_at"),
    )


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


class Job(Leased, Base):
    """A periodic job (e.g. one cloud's sync), taken by one worker at a time through a lease."""

    __tablename__ = "jobs"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    next_run_at: Mapped[datetime | None]
    last_run_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    cursor: Mapped[datetime | None]
    runs: Mapped[int] = mapped_column(Integer, default=0)


class User(Base):
    """A Keystone user in domain Default; the password is stored as an Argon2id hash."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    domain_id: Mapped[str] = mapped_column(String(64), default="default")
    password_hash: Mapped[str] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    default_project_id: Mapped[str | None] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("domain_id", "name", name="uq_users_domain_name"),)


class RoleAssignment(Base):
    """A user holds a role (admin, member, reader) on a project."""

    __tablename__ = "role_assignments"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(32), primary_key=True)


class Token(Base):
    """An issued token, stored as the SHA-256 of the opaque value the client holds."""

    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[str | None] = mapped_column(String(64))
    roles: Mapped[list[Any]] = mapped_column(JSON, default=list)
    methods: Mapped[list[Any]] = mapped_column(JSON, default=list)
    audit_id: Mapped[str] = mapped_column(String(64))
    # A token made from another (the `token` method) names it, so revoking a token revokes
    # the ones made from it; the chain id is the first token's audit id (null: this one).
    parent_audit_id: Mapped[str | None] = mapped_column(String(64), index=True)
    audit_chain_id: Mapped[str | None] = mapped_column(String(64))
    issued_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class LoginFailure(Base):
    """Recent failed logins for one user or one source address (keyed by a digest), and
    until when further attempts are refused. Shared by every API process."""

    __tablename__ = "login_failures"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime] = mapped_column(index=True)
    locked_until: Mapped[datetime | None]


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
