"""The event types canopy emits, and the payloads they carry.

Types are the ones OpenStack's own services emit (Blazar's `lease.*`, Nova's legacy
`compute.instance.*`, Heat's `orchestration.stack.*`), unchanged on both transports, so a
consumer written for OpenStack matches them as they are. `lease.event.start_soon` (a
heads-up) and `orchestration.resource.*` (Heat sends nothing per resource) are canopy's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from canopy.orchestration.states import Action, Status
from canopy.store.models import Lease, Server, Stack

LEASE_CREATE = "lease.create"
LEASE_UPDATE = "lease.update"
LEASE_DELETE = "lease.delete"
LEASE_START_SOON = "lease.event.start_soon"
SERVER_CREATE_END = "compute.instance.create.end"
SERVER_CREATE_ERROR = "compute.instance.create.error"
SERVER_UPDATE = "compute.instance.update"  # went to ERROR, or renamed, metadata, tags
SERVER_DELETE_END = "compute.instance.delete.end"
SERVER_POWER_OFF_END = "compute.instance.power_off.end"
SERVER_POWER_ON_END = "compute.instance.power_on.end"


def lease_event(kind: str) -> str:
    """The type of a lease event's notification: `lease.event.start_lease`, ..."""
    return f"lease.event.{kind}"


# Heat's suffix for a stack's status (anything else is an error, as in Heat).
_PHASE: dict[str, str] = {
    Status.IN_PROGRESS: "start",
    Status.COMPLETE: "end",
    Status.FAILED: "error",
}
_STACK_ACTIONS = tuple(a for a in Action if a is not Action.INIT)  # a stack never INITs


def stack_type(action: str, status: str) -> str:
    """Heat's type for a stack reaching `action`_`status`: `orchestration.stack.create.end`."""
    return f"orchestration.stack.{action.lower()}.{_PHASE.get(status, 'error')}"


def resource_type(action: str, status: str) -> str:
    """Canopy's own type for a resource's event: `orchestration.resource.create.error`."""
    return f"orchestration.resource.{action.lower()}.{_PHASE.get(status, 'error')}"


_FIXED = (
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

# Every type a subscription may name (its filters are these, or patterns over them).
TYPES = (
    *_FIXED,
    *(stack_type(a, s) for a in _STACK_ACTIONS for s in Status),
    *(resource_type(a, s) for a in Action for s in Status),
    resource_type("SIGNAL", Status.COMPLETE),  # a signal a resource received
)

# The types as a refused filter lists them: the orchestration ones by their shape.
SHOWN = (
    *_FIXED,
    "orchestration.stack.<action>.<start|end|error>",
    "orchestration.resource.<action>.<start|end|error>",
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


def stack_subject(stack_id: str) -> str:
    """A stack's events and its resources' share one subject: they arrive in order."""
    return f"stack/{stack_id}"


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


def _description(template: object) -> str:
    text = (
        template.get("description", template.get("Description", ""))
        if isinstance(template, dict)
        else ""
    )
    return text if isinstance(text, str) else ""


def stack_payload(stack: Stack, action: str, status: str, reason: str) -> dict[str, Any]:
    """The stack as Heat's notifications carry it (`format_notification_body`'s keys), in
    the state the event announces. Heat's `username` is left out: canopy keeps the user's
    id only, so `user_id` (Heat's deprecated key, a name there) is the id as well."""
    return {
        "stack_identity": stack.id,
        "stack_name": stack.name,
        "tenant_id": stack.project_id,
        "user_id": stack.user_id,
        "user_identity": stack.user_id,
        "state": f"{action}_{status}",
        "state_reason": reason,
        "description": _description(stack.template),
        "tags": list(stack.tags or []),
        "create_at": iso(stack.created_at),
        "updated_at": iso(stack.updated_at),
    }


def resource_payload(stack: Stack, event: Mapping[str, Any]) -> dict[str, Any]:
    """A resource's event (a StackEvent's values), with the keys of Heat's event list
    (`resource_status`, ...) and the stack's project; `event_id` is its id in that list."""
    return {
        "event_id": event["id"],
        "stack_identity": stack.id,
        "stack_name": stack.name,
        "tenant_id": stack.project_id,
        "resource_name": event["resource_name"],
        "resource_type": event["resource_type"],
        "physical_resource_id": event["physical_resource_id"],
        "resource_action": event["action"],
        "resource_status": event["status"],
        "resource_status_reason": event["status_reason"],
        "event_time": iso(event["time"]),
    }
