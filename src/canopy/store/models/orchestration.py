"""The tables of orchestration: stacks, their resources and their events (Heat's model).

A stack is a leased row (`Retried`) for the orchestration controller: a stack whose status is
IN_PROGRESS has work, and `next_attempt_at` is the earliest moment a time-based wait of one
of its resources ends (a TestResource's wait, the stack's timeout). A resource waiting on a
server needs no time: the controller's "what is due" query reads the server rows themselves
(store/orchestration.py), so a server that becomes ACTIVE makes its stack due at once.

Resource rows carry no lease of their own: a stack is stepped by one worker at a time (its
row's lease), and a step writes every resource of the stack in one transaction. The engine
itself calls no cloud (a server resource is a canopy server, created and deleted through the
service layer), so there is nothing to fence per resource.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from canopy.store.models.base import Base, Retried


class Stack(Retried, Base):
    """A deployment made from a template: what was asked for and where it stands."""

    __tablename__ = "stacks"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    project_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(64), default="")
    template: Mapped[dict[str, Any]]
    files: Mapped[dict[str, Any]]
    environment: Mapped[dict[str, Any]]
    # The parameters as the user gave them (heatclient sends every value as a string).
    parameters: Mapped[dict[str, Any]]
    action: Mapped[str] = mapped_column(String(16))  # CREATE, UPDATE, DELETE
    status: Mapped[str] = mapped_column(String(16))  # IN_PROGRESS, COMPLETE, FAILED
    status_reason: Mapped[str] = mapped_column(Text, default="")
    disable_rollback: Mapped[bool] = mapped_column(Boolean, default=True)
    timeout_mins: Mapped[int | None] = mapped_column(Integer)
    tags: Mapped[list[Any]]
    # Bumped by every update: a resource is done for the current template when its row's
    # generation is the stack's.
    generation: Mapped[int] = mapped_column(Integer, default=0)
    # When the current action began (its timeout counts from here).
    action_started_at: Mapped[datetime]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime | None]
    deleted_at: Mapped[datetime | None]
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    # What the last update replaced ({template, files, environment, parameters}), kept so
    # that a failed update rolls back to it; None after a create and once the update ends.
    previous: Mapped[dict[str, Any] | None]
    # A nested stack (OS::Heat::Stack, a template resource): the parent stack and its
    # resource this stack stands for, and how deep it is (0: a top-level stack).
    owner_id: Mapped[str | None] = mapped_column(String(64), default=None)
    owner_resource: Mapped[str | None] = mapped_column(String(255), default=None)
    nested_depth: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # A stack adopting its resources (action ADOPT): each resource's id and data from the
    # adopt data, by resource name; None otherwise (cleared when the adopt ends).
    adopt_data: Mapped[dict[str, Any] | None] = mapped_column(default=None)

    __table_args__ = (
        # The client finds a stack by name: a name is unique among a project's live stacks.
        Index(
            "uq_stacks_project_live_name",
            "project_id",
            "name",
            unique=True,
            postgresql_where=text("NOT deleted"),
            sqlite_where=text("NOT deleted"),
        ),
        Index("ix_stacks_project_created", "project_id", "deleted", "created_at"),
        Index("ix_stacks_status", "status", "next_attempt_at"),
        Index("ix_stacks_owner", "owner_id"),
    )


class StackResource(Base):
    """One resource of a stack.

    `desired` is "present" for the row that stands for a resource of the current template
    and "absent" for a row to be deleted (a resource removed or replaced by an update, or
    every resource of a stack being deleted). `action`/`status` is what has been observed.
    """

    __tablename__ = "stack_resources"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    stack_id: Mapped[str] = mapped_column(ForeignKey("stacks.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(128))
    desired: Mapped[str] = mapped_column(String(16))
    generation: Mapped[int] = mapped_column(Integer, default=0)
    physical_resource_id: Mapped[str] = mapped_column(String(255), default="")
    action: Mapped[str] = mapped_column(String(16))  # INIT, CREATE, UPDATE, DELETE
    status: Mapped[str] = mapped_column(String(16))  # IN_PROGRESS, COMPLETE, FAILED
    status_reason: Mapped[str] = mapped_column(Text, default="")
    # The properties as resolved when the resource was created or last updated.
    properties: Mapped[dict[str, Any]]
    # What get_attr reads, recorded when the resource completed.
    attributes: Mapped[dict[str, Any]]
    # The names this resource depends on (its template's depends_on and references).
    requires: Mapped[list[Any]]
    # The resource type's own progress data (e.g. a TestResource's end of wait).
    data: Mapped[dict[str, Any]]
    # A canopy server made for this resource (OS::Nova::Server).
    server_id: Mapped[str | None] = mapped_column(String(64))
    # The group row (ResourceGroup, AutoScalingGroup) this row is a member of; None for a
    # resource of the template. Members are driven by their group, not by the graph walk.
    group_id: Mapped[str | None] = mapped_column(String(64))
    # When a time-based wait of this resource ends (None: not waiting on time).
    wait_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_stack_resources_stack", "stack_id", "name"),
        Index("ix_stack_resources_server", "server_id"),
        Index("ix_stack_resources_group", "group_id"),
    )


class StackEvent(Base):
    """Something that happened to a stack or one of its resources (Heat's events).

    `seq` orders them (markers and sort_dir are on it); `id` is what the API shows.
    """

    __tablename__ = "stack_events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # The sentinel lets a flush write many events with one INSERT on SQLite too (SQLAlchemy
    # matches the `seq`s it gets back to the rows by it); the schema is the same.
    id: Mapped[str] = mapped_column(String(64), unique=True, insert_sentinel=True)
    stack_id: Mapped[str] = mapped_column(ForeignKey("stacks.id", ondelete="CASCADE"))
    resource_name: Mapped[str] = mapped_column(String(255))
    logical_resource_id: Mapped[str] = mapped_column(String(255))
    physical_resource_id: Mapped[str] = mapped_column(String(255), default="")
    resource_type: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    status_reason: Mapped[str] = mapped_column(Text, default="")
    time: Mapped[datetime]

    __table_args__ = (Index("ix_stack_events_stack", "stack_id", "seq"),)


class StackSignal(Base):
    """A signal sent to a resource (a wait condition's handle, a scaling policy): intent
    written by the API, acted on by the engine, which sets `handled_at` and `outcome`."""

    __tablename__ = "stack_signals"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True)
    stack_id: Mapped[str] = mapped_column(ForeignKey("stacks.id", ondelete="CASCADE"))
    resource_name: Mapped[str] = mapped_column(String(255))
    # The row the route checked the signal against (null: written before 0029): a signal
    # is not handed to a row that replaced it meanwhile.
    resource_id: Mapped[str | None] = mapped_column(String(64), default=None)
    data: Mapped[dict[str, Any]]
    # "token" (a Keystone token) or "url" (the resource's own signal token).
    via: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime]
    handled_at: Mapped[datetime | None]
    outcome: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (
        Index("ix_stack_signals_pending", "stack_id", "handled_at", "seq"),
        # The stacks with a signal to act on (the orchestration loop's every pass): the
        # unhandled signals only, not the handled ones kept for each stack.
        Index(
            "ix_stack_signals_unhandled",
            "stack_id",
            "handled_at",  # which makes it covering for SQLite (it reads no row)
            sqlite_where=text("handled_at IS NULL"),
            postgresql_where=text("handled_at IS NULL"),
        ),
    )
