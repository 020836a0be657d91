"""Blazar's statuses and event types, as its API shows them."""

from __future__ import annotations

from enum import StrEnum


class LeaseStatus(StrEnum):
    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    TERMINATED = "TERMINATED"
    ERROR = "ERROR"


class ReservationStatus(StrEnum):  # lower case, as Blazar has them
    PENDING = "pending"
    ACTIVE = "active"
    DELETED = "deleted"
    ERROR = "error"


class EventStatus(StrEnum):
    UNDONE = "UNDONE"
    IN_PROGRESS = "IN_PROGRESS"
    DONE = "DONE"
    ERROR = "ERROR"


class EventType(StrEnum):
    START = "start_lease"
    BEFORE_END = "before_end_lease"
    END = "end_lease"


VIRTUAL_INSTANCE = "virtual:instance"
FLAVOR_INSTANCE = "flavor:instance"
PHYSICAL_HOST = "physical:host"
RESOURCE_TYPES = (VIRTUAL_INSTANCE, FLAVOR_INSTANCE)

# Blazar's default for the before-end event: an hour before the end.
BEFORE_END_DEFAULT_MINUTES = 60
