"""Leases, reservations and events as Blazar's API shows them."""

from __future__ import annotations

from typing import Any

from canopy.reservations.dates import format_date
from canopy.reservations.states import FLAVOR_INSTANCE, PHYSICAL_HOST
from canopy.store.models import Lease, LeaseEvent, Reservation


def host_reservation_view(r: Reservation) -> dict[str, Any]:
    """A physical:host reservation as Blazar shows it (min, max, both queries, before_end);
    `hosts` and `placement` are Canopy's own: the registered host ids it holds."""
    return {
        "id": r.id,
        "lease_id": r.lease_id,
        "status": r.status,
        "missing_resources": r.missing_resources,
        "resources_changed": r.resources_changed,
        "resource_id": r.id,
        "resource_type": r.resource_type,
        "min": r.min_hosts,
        "max": r.max_hosts,
        "hypervisor_properties": r.hypervisor_properties or "",
        "resource_properties": r.resource_properties,
        "before_end": r.before_end,
        "aggregate_id": None,
        "created_at": format_date(r.created_at),
        "updated_at": format_date(r.updated_at),
        "hosts": [str(h) for p in r.placement for h in p.get("hosts", [])],
        "placement": [
            {"cloud": p["cloud"], "amount": p["amount"], "reason": p["reason"]} for p in r.placement
        ],
    }


def reservation_view(r: Reservation) -> dict[str, Any]:
    if r.resource_type == PHYSICAL_HOST:
        return host_reservation_view(r)
    out: dict[str, Any] = {
        "id": r.id,
        "lease_id": r.lease_id,
        "status": r.status,
        "missing_resources": r.missing_resources,
        "resources_changed": r.resources_changed,
        "resource_id": r.id,
        "resource_type": r.resource_type,
        "amount": r.amount,
        "vcpus": r.vcpus,
        "memory_mb": r.memory_mb,
        "disk_gb": r.disk_gb,
        "affinity": r.affinity,
        "resource_properties": r.resource_properties,
        "flavor_id": r.id,  # boot with --flavor <reservation id>
        "server_group_id": None,
        "aggregate_id": None,
        "created_at": format_date(r.created_at),
        "updated_at": format_date(r.updated_at),
        # Canopy's own: where the capacity is held and why.
        "placement": [
            {"cloud": p["cloud"], "amount": p["amount"], "reason": p["reason"]} for p in r.placement
        ],
    }
    if r.resource_type == FLAVOR_INSTANCE:
        out["flavor_id"] = r.source_flavor_id
        out["reservation_flavor_id"] = r.id
    return out


def event_view(e: LeaseEvent) -> dict[str, Any]:
    return {
        "id": e.id,
        "lease_id": e.lease_id,
        "status": e.status,
        "event_type": e.event_type,
        "time": format_date(e.time),
        "created_at": format_date(e.created_at),
        "updated_at": format_date(e.updated_at),
    }


def lease_view(
    lease: Lease,
    reservations: list[Reservation],
    events: list[LeaseEvent],
    servers: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The lease as Blazar shows it; `servers` (Canopy's own, only for a lease that
    carries servers): how early they were booted and whether they were ready on time."""
    out: dict[str, Any] = {
        "id": lease.id,
        "name": lease.name,
        "start_date": format_date(lease.start_at),
        "end_date": format_date(lease.end_at),
        "status": lease.status,
        "degraded": lease.degraded,
        "user_id": lease.user_id,
        "project_id": lease.project_id,
        "trust_id": None,
        "created_at": format_date(lease.created_at),
        "updated_at": format_date(lease.updated_at),
        "reservations": [reservation_view(r) for r in reservations],
        "events": [event_view(e) for e in events],
    }
    if servers is not None:
        out["servers"] = servers
    return out
