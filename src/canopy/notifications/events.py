"""The event types canopy emits, and the payloads they carry.

Types are the ones OpenStack's own services emit (Blazar's `lease.*`, Nova's legacy
`compute.instance.*`), unchanged on both transports, so a consumer written for OpenStack
matches them as they are. `lease.event.start_soon` is canopy's own (a heads-up).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from canopy.store.models import Lease, Server

LEASE_CREATE = "lease.create"
LEASE_UPDATE = "lease.update"
LEASE_DELETE = "lease.delete"
LEASE_START_SOON = "lease.event.start_soon"
SERVER_CREATE_END = "compute.instance.create.end"
SERVER_CREATE_ERROR = "compute.instance.create.error"
SERVER_UPDATE = "compute.instance.update"  # a running server went to ERROR
SERVER_DELETE_END = "compute.instance.delete.end"
SERVER_POWER_OFF_END = "compute.instance.power_off.end"
SERVER_POWER_ON_END = "compute.instance.power_on.end"


def lease_event(kind: str) -> str:
    """The type of a lease event's notification: `lease.event.start_lease`, ..."""
    return f"lease.event.{kind}"


# Every type a subscription may name (its filters are these, or patterns over them).
TYPES = (
    LEASE_CREATE,
    LEASE_UPDATE,
    LEASE_DELETE,
    lease_event("start_lease"),
    lease_event("before_end_lease"),
    lease_event("end_lease"),
    LEASE_START_SOON,
    SERVER_CREATE_END,
    SERVER_CREATE_ERROR,
    SERVER_UPDATE,
    SERVER_DELETE_END,
    SERVER_POWER_OFF_END,
    SERVER_POWER_ON_END,
)


def iso(t: datetime | None) -> str | None:
    """A time as every payload gives it: ISO 8601, UTC, with a Z."""
    if t is None:
        return None
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def lease_subject(lease_id: str) -> str:
    return f"lease/{lease_id}"


def server_subject(server_id: str) -> str:
    return f"server/{server_id}"


def lease_payload(lease: Lease) -> dict[str, Any]:
    """The lease, as Blazar's notifications carry it (its fields, not its reservations)."""
    return {
        "id": lease.id,
        "lease_id": lease.id,
        "name": lease.name,
        "project_id": lease.project_id,
        "user_id": lease.user_id,
        "start_date": iso(lease.start_at),
        "end_date": iso(lease.end_at),
        "status": lease.status,
        "degraded": lease.degraded,
        "created_at": iso(lease.created_at),
        "updated_at": iso(lease.updated_at),
    }


# Nova's vm_state for each status.
_VM_STATE = {
    "ACTIVE": "active",
    "BUILD": "building",
    "SHUTOFF": "stopped",
    "ERROR": "error",
    "DELETED": "deleted",
    "REBOOT": "active",
    "HARD_REBOOT": "active",
}


def server_payload(server: Server) -> dict[str, Any]:
    """The server, with the keys of Nova's legacy instance notifications."""
    return {
        "instance_id": server.id,
        "display_name": server.name,
        "tenant_id": server.project_id,
        "user_id": server.user_id,
        "state": _VM_STATE.get(server.status, server.status.lower()),
        "state_description": server.task_state or "",
        "instance_flavor_id": server.flavor_id,
        "image_ref": server.image_id,
        "availability_zone": server.cloud,
        "host": server.cloud,
        "node": server.zone,
        "metadata": dict(server.metadata_ or {}),
        "created_at": iso(server.created_at),
        "launched_at": iso(server.launched_at),
        "terminated_at": iso(server.terminated_at),
        "deleted_at": iso(server.terminated_at) if server.deleted else None,
        "message": server.fault_message or "",
    }
