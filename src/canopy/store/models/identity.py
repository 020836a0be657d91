"""Identity's tables: projects and their quotas, users, role assignments, tokens, login
failures, application credentials."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from canopy.store.models.base import Base


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


class QuotaUsage(Base):
    """What a project's live servers use, kept up to date in the transactions that change it.

    A create adds to it (with the project row locked, after the quota check), the final
    step of a delete subtracts from it; housekeeping recounts it from the rows now and then
    (store/quota_usage.py). A missing row is counted from the rows when first needed.
    """

    __tablename__ = "quota_usage"

    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    instances: Mapped[int] = mapped_column(BigInteger, default=0)
    cores: Mapped[int] = mapped_column(BigInteger, default=0)
    ram: Mapped[int] = mapped_column(BigInteger, default=0)
    counted_at: Mapped[datetime | None]  # the last recount from the rows
    # Drift repairs applied: the fence of housekeeping's repair (store/quota_usage.py).
    repairs: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


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
    # A token issued through an application credential (or made from such a token) names
    # it: its roles are the credential's (as far as the user still holds them), and it
    # stops working when the credential is deleted or expires.
    app_cred_id: Mapped[str | None] = mapped_column(String(64))


class LoginFailure(Base):
    """Recent failed logins for one user or one source address (keyed by a digest), and
    until when further attempts are refused. Shared by every API process."""

    __tablename__ = "login_failures"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime] = mapped_column(index=True)
    locked_until: Mapped[datetime | None]


class ApplicationCredential(Base):
    """A user's application credential (Keystone's): a secret, stored as an Argon2id hash,
    that authenticates as the user on one project with a subset of the user's roles there."""

    __tablename__ = "application_credentials"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    secret_hash: Mapped[str] = mapped_column(Text)
    roles: Mapped[list[Any]] = mapped_column(JSON, default=list)  # role names
    unrestricted: Mapped[bool] = mapped_column(Boolean, default=False)
    expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("user_id", "name", name="uq_app_creds_user_name"),)
