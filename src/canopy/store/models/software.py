"""Heat's software configs and the deployments made through its REST API
(`openstack software config create`, `openstack software deployment create`).

Configs and deployments that a stack makes are its resource rows (orchestration.py); these
tables hold only what the API makes. A row is its project's: every read filters on it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from canopy.store.models.base import Base


class SoftwareConfigRow(Base):
    """A config: text (or a map) for a group's tool, with its inputs, outputs and options."""

    __tablename__ = "software_configs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(255))
    group: Mapped[str] = mapped_column(String(255))
    # {"config", "inputs", "outputs", "options"}: Heat's JSON column, as Heat keeps it.
    body: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]

    __table_args__ = (Index("ix_software_configs_project", "project_id", "created_at", "id"),)


class SoftwareDeploymentRow(Base):
    """A config deployed to a server: its state as the agent (or the caller) reports it."""

    __tablename__ = "software_deployments"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64))
    # A config referenced by a deployment cannot be deleted (Heat's rule; the key says so).
    config_id: Mapped[str] = mapped_column(ForeignKey("software_configs.id"))
    server_id: Mapped[str] = mapped_column(String(255))
    action: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str | None] = mapped_column(String(255))
    status_reason: Mapped[str] = mapped_column(Text, default="")
    input_values: Mapped[dict[str, Any] | None]
    output_values: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_software_deployments_project", "project_id", "server_id"),
        Index("ix_software_deployments_config", "config_id"),
    )
