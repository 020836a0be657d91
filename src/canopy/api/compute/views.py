"""How a server and a flavor look at each microversion (Nova's views/servers.py, flavors.py).

Every field is derived from canopy's own rows; nothing here calls a cloud.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.api.compute.common import (
    bookmark,
    host_id,
    isotime,
    links,
    perfect_time,
    reservation_id,
)
from canopy.api.compute.microversion import APIVersion
from canopy.config import Settings
from canopy.controllers.summary import attempts_text
from canopy.domain.context import RequestContext
from canopy.domain.states import ServerStatus
from canopy.store.models import Cloud, Flavor, InstanceAction, Server
from canopy.store.server_extras import tags_of, user_data_of

# Nova's vm_state for each status canopy shows.
VM_STATE: dict[str, str] = {
    ServerStatus.BUILD: "building",
    ServerStatus.ACTIVE: "active",
    ServerStatus.REBOOT: "active",
    ServerStatus.HARD_REBOOT: "active",
    ServerStatus.SHUTOFF: "stopped",
    ServerStatus.ERROR: "error",
    ServerStatus.DELETED: "deleted",
}

# Nova's power_state codes from what the cloud last reported.
NOSTATE, RUNNING, SHUTDOWN = 0, 1, 4
POWER_STATE: dict[str | None, int] = {"running": RUNNING, "rebooting": RUNNING, "stopped": SHUTDOWN}

_PROGRESS_STATUSES = frozenset({"ACTIVE", "BUILD"})
_FAULT_STATUSES = frozenset({"ERROR", "DELETED"})


@dataclass
class ViewContext:
    """What rendering a page of servers needs, loaded once per request."""

    request: Request
    settings: Settings
    version: APIVersion
    ctx: RequestContext
    flavors: dict[str, Flavor] = field(default_factory=dict)
    clouds: dict[str, Cloud] = field(default_factory=dict)
    requests: dict[str, str] = field(default_factory=dict)  # server id -> create request id
    tags: dict[str, list[str]] = field(default_factory=dict)  # server id -> its tags
    user_data: dict[str, str] | None = None  # loaded for one server's show only


async def view_context(
    s: AsyncSession,
    request: Request,
    settings: Settings,
    version: APIVersion,
    ctx: RequestContext,
    servers: Sequence[Server],
    *,
    show: bool = False,
) -> ViewContext:
    """Flavors and clouds (small tables, read whole), the tags of each server on the page
    (2.26+) and, for admins at 2.3+, the create request of each (its reservation id).

    User data (up to 64 KiB a server) is read only to `show` one server to an admin
    (2.3+); a page of servers never loads it and shows it as null.
    """
    vc = ViewContext(request, settings, version, ctx)
    if not servers:
        return vc
    ids = [sv.id for sv in servers]
    if version.at_least(26):
        vc.tags = await tags_of(s, ids)
    if show and ctx.is_cloud_admin and version.at_least(3):
        vc.user_data = await user_data_of(s, ids)
    vc.flavors = {f.id: f for f in (await s.execute(select(Flavor))).scalars()}
    vc.clouds = {c.name: c for c in (await s.execute(select(Cloud))).scalars()}
    if ctx.is_cloud_admin and version.at_least(3):
        rows = await s.execute(
            select(InstanceAction.server_id, InstanceAction.request_id)
            .where(
                InstanceAction.server_id.in_(ids),
                InstanceAction.action == "create",
            )
            .order_by(InstanceAction.id)
        )
        for sid, rid in rows:
            vc.requests.setdefault(sid, rid)
    return vc


def server_basic(vc: ViewContext, sv: Server) -> dict[str, Any]:
    """GET /servers: id, name, links."""
    return {
        "id": sv.id,
        "name": sv.name,
        "links": links(vc.request, vc.settings, "servers", sv.id),
    }


def server_detail(vc: ViewContext, sv: Server, *, show: bool = False) -> dict[str, Any]:
    """GET /servers/detail and GET /servers/{id} (`show` adds 2.71's server_groups)."""
    v = vc.version
    status = ServerStatus.DELETED.value if sv.deleted else sv.status
    vm_state = VM_STATE.get(status)
    out: dict[str, Any] = {
        "id": sv.id,
        "name": sv.name,
        "status": status,
        "tenant_id": sv.project_id,
        "user_id": sv.user_id,
        "metadata": dict(sv.metadata_ or {}),
        "hostId": host_id(sv.project_id, sv.cloud),
        "image": _image(vc, sv),
        "flavor": _embedded_flavor(vc, sv),
        "created": isotime(sv.created_at),
        "updated": isotime(sv.updated_at),
        "addresses": {} if vm_state == "building" else _addresses(sv),
        "accessIPv4": "",
        "accessIPv6": "",
        "links": links(vc.request, vc.settings, "servers", sv.id),
        "OS-DCF:diskConfig": "MANUAL",
        "OS-EXT-AZ:availability_zone": sv.cloud or sv.requested_zone or "",
        "config_drive": "True" if sv.config_drive else "",
        "key_name": sv.key_name,
        "OS-SRV-USG:launched_at": perfect_time(sv.launched_at),
        "OS-SRV-USG:terminated_at": perfect_time(sv.terminated_at),
        "security_groups": [{"name": "default"}],
        "OS-EXT-STS:task_state": sv.task_state,
        "OS-EXT-STS:vm_state": vm_state,
        "OS-EXT-STS:power_state": POWER_STATE.get(sv.observed_state, NOSTATE),
        "os-extended-volumes:volumes_attached": [],
    }
    if status in _PROGRESS_STATUSES:
        out["progress"] = 0
    if status in _FAULT_STATUSES:
        fault = _fault(vc, sv)
        if fault is not None:
            out["fault"] = fault
    if vc.ctx.is_cloud_admin:
        _extended_attributes(vc, sv, out)
    if v.at_least(9):
        out["locked"] = sv.locked
    if v.at_least(16) and vc.ctx.is_cloud_admin:
        out["host_status"] = _host_status(vc, sv)
    if v.at_least(19):
        out["description"] = sv.description
    if v.at_least(26):
        out["tags"] = list(vc.tags.get(sv.id, ()))
    if v.at_least(63):
        out["trusted_image_certificates"] = None
    if show and v.at_least(71):
        out["server_groups"] = [sv.group_id] if sv.group_id else []
    if v.at_least(73):
        out["locked_reason"] = sv.locked_reason
    return out


def _image(vc: ViewContext, sv: Server) -> dict[str, Any] | str:
    if not sv.image_id or sv.boot_from_volume:
        return ""
    return {
        "id": sv.image_id,
        "links": [
            {"rel": "bookmark", "href": bookmark(vc.request, vc.settings, "images", sv.image_id)}
        ],
    }


def _embedded_flavor(vc: ViewContext, sv: Server) -> dict[str, Any]:
    f = vc.flavors.get(sv.flavor_id)
    if not vc.version.at_least(47):
        return {
            "id": sv.flavor_id,
            "links": [
                {
                    "rel": "bookmark",
                    "href": bookmark(vc.request, vc.settings, "flavors", sv.flavor_id),
                }
            ],
        }
    if f is None:
        return {}
    return {
        "vcpus": f.vcpus,
        "ram": f.ram_mb,
        "disk": f.disk_gb,
        "ephemeral": 0,
        "swap": 0,
        "original_name": f.name,
        "extra_specs": {},
    }


def _addresses(sv: Server) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for net, addrs in (sv.addresses or {}).items():
        entries = []
        for a in addrs if isinstance(addrs, list) else []:
            addr = a.get("addr") if isinstance(a, dict) else str(a)
            if not addr:
                continue
            version = a.get("version") if isinstance(a, dict) else None
            entries.append(
                {
                    "addr": addr,
                    "version": version or (6 if ":" in addr else 4),
                    "OS-EXT-IPS:type": "fixed",
                    "OS-EXT-IPS-MAC:mac_addr": mac_address(sv.id, net),
                }
            )
        out[str(net)] = entries
    return out


def mac_address(server_id: str, network: str) -> str:
    """A stable, locally administered MAC (OpenStack's fa:16:3e prefix) per server NIC."""
    digest = hashlib.sha256(f"{server_id}/{network}".encode()).digest()
    return "fa:16:3e:" + ":".join(f"{b:02x}" for b in digest[:3])


def _fault(vc: ViewContext, sv: Server) -> dict[str, Any] | None:
    if sv.fault_message is None and sv.fault_code is None:
        return None
    fault: dict[str, Any] = {
        "code": sv.fault_code or 500,
        "created": isotime(sv.fault_at or sv.updated_at),
        "message": sv.fault_message or "",
    }
    if vc.ctx.is_cloud_admin and sv.attempt_log:
        fault["details"] = attempts_text(list(sv.attempt_log))
    return fault


def hostname(name: str) -> str:
    """Nova's `sanitize_hostname`, roughly: what a guest would be called."""
    h = re.sub(r"[^\w.-]+", "-", name.lower().replace("_", "-"))
    h = re.sub(r"[-.]{2,}", "-", h).strip(".-")
    return h[:63] or "server"


def _extended_attributes(vc: ViewContext, sv: Server, out: dict[str, Any]) -> None:
    """OS-EXT-SRV-ATTR:* (admins): the cloud is the host and the node."""
    out["OS-EXT-SRV-ATTR:host"] = sv.cloud
    out["OS-EXT-SRV-ATTR:instance_name"] = sv.remote_id or ""
    out["OS-EXT-SRV-ATTR:hypervisor_hostname"] = sv.cloud
    if vc.version.at_least(3):
        rid = vc.requests.get(sv.id)
        out["OS-EXT-SRV-ATTR:hostname"] = hostname(sv.name)
        out["OS-EXT-SRV-ATTR:kernel_id"] = ""
        out["OS-EXT-SRV-ATTR:launch_index"] = sv.launch_index
        out["OS-EXT-SRV-ATTR:ramdisk_id"] = ""
        out["OS-EXT-SRV-ATTR:reservation_id"] = reservation_id(rid) if rid else None
        out["OS-EXT-SRV-ATTR:root_device_name"] = None
        out["OS-EXT-SRV-ATTR:user_data"] = (vc.user_data or {}).get(sv.id)


def _host_status(vc: ViewContext, sv: Server) -> str:
    """2.16's host_status, for the cloud the server lives on."""
    if not sv.cloud:
        return ""
    c = vc.clouds.get(sv.cloud)
    if c is None:
        return "UNKNOWN"
    if not c.enabled:
        return "MAINTENANCE"
    return "UP" if c.healthy else "UNKNOWN"


# Flavors --------------------------------------------------------------------------------


def flavor_basic(request: Request, settings: Settings, v: APIVersion, f: Flavor) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": f.id,
        "name": f.name,
        "links": links(request, settings, "flavors", f.id),
    }
    if v.at_least(55):
        out["description"] = None
    return out


def flavor_detail(request: Request, settings: Settings, v: APIVersion, f: Flavor) -> dict[str, Any]:
    out = flavor_basic(request, settings, v, f)
    out.update(
        {
            "ram": f.ram_mb,
            "disk": f.disk_gb,
            "swap": 0 if v.at_least(75) else "",
            "OS-FLV-EXT-DATA:ephemeral": 0,
            "OS-FLV-DISABLED:disabled": False,
            "vcpus": f.vcpus,
            "os-flavor-access:is_public": f.is_public,
            "rxtx_factor": 1.0,
        }
    )
    if v.at_least(61):
        out["extra_specs"] = {}
    return out
