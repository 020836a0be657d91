"""Heat's documents for stacks, resources, events and outputs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from canopy.store.models import Stack, StackEvent, StackResource


def isotime(t: datetime | None) -> str | None:
    """Heat's times: `2026-01-01T00:00:00Z`."""
    return None if t is None else t.strftime("%Y-%m-%dT%H:%M:%SZ")


def description(template: Any) -> str:
    if not isinstance(template, dict):
        return ""
    text = template.get("description", template.get("Description", ""))
    return text if isinstance(text, str) else ""


def stack_summary(stack: Stack, href: str) -> dict[str, Any]:
    return {
        "id": stack.id,
        "stack_name": stack.name,
        "description": description(stack.template),
        "creation_time": isotime(stack.created_at),
        "updated_time": isotime(stack.updated_at),
        "deletion_time": isotime(stack.deleted_at),
        "stack_status": f"{stack.action}_{stack.status}",
        "stack_status_reason": stack.status_reason,
        "stack_owner": None,
        "parent": stack.owner_id,
        "stack_user_project_id": stack.project_id,
        "project": stack.project_id,
        "tags": list(stack.tags) or None,
        "links": [{"href": href, "rel": "self"}],
    }


def stack_detail(
    stack: Stack,
    href: str,
    parameters: dict[str, str],
    outputs: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    out = stack_summary(stack, href)
    out.update(
        {
            "disable_rollback": stack.disable_rollback,
            "timeout_mins": stack.timeout_mins,
            "parameters": parameters,
            "capabilities": [],
            "notification_topics": [],
            "template_description": description(stack.template),
        }
    )
    if outputs is not None:
        out["outputs"] = outputs
    return out


def required_by(rows: list[StackResource]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {r.name: [] for r in rows}
    for r in rows:
        for need in r.requires or []:
            if need in out:
                out[need].append(r.name)
    return out


def resource_view(
    res: StackResource, stack_href: str, needed_by: list[str], *, detail: bool = False
) -> dict[str, Any]:
    href = f"{stack_href}/resources/{res.name}"
    out: dict[str, Any] = {
        "resource_name": res.name,
        "logical_resource_id": res.name,
        "physical_resource_id": res.physical_resource_id or "",
        "resource_type": res.type,
        "resource_status": f"{res.action}_{res.status}",
        "resource_status_reason": res.status_reason,
        "creation_time": isotime(res.created_at),
        "updated_time": isotime(res.updated_at),
        "required_by": sorted(needed_by),
        "links": [{"href": href, "rel": "self"}, {"href": stack_href, "rel": "stack"}],
    }
    if detail:
        out["attributes"] = dict(res.attributes or {})
        out["description"] = ""
        out["metadata"] = {}
        if res.server_id:
            canopy = (res.attributes or {}).get("canopy")
            if isinstance(canopy, dict):
                out["canopy"] = canopy
    return out


def event_view(e: StackEvent, stack_href: str, *, detail: bool = False) -> dict[str, Any]:
    resource = f"{stack_href}/resources/{e.resource_name}"
    out: dict[str, Any] = {
        "id": e.id,
        "resource_name": e.resource_name,
        "logical_resource_id": e.logical_resource_id,
        "physical_resource_id": e.physical_resource_id,
        "resource_status": f"{e.action}_{e.status}",
        "resource_status_reason": e.status_reason,
        "event_time": isotime(e.time),
        "links": [
            {"href": f"{resource}/events/{e.id}", "rel": "self"},
            {"href": resource, "rel": "resource"},
            {"href": stack_href, "rel": "stack"},
        ],
    }
    if detail:
        out["resource_type"] = e.resource_type
        out["resource_properties"] = {}
    return out
