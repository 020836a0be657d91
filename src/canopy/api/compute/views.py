"""How a server and a flavor look at each microversion (Nova's views/servers.py, flavors.py).

Every field is derived from canopy's own rows; nothing here calls a cloud.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

from fastapi import Request
from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.api.compute.common import (
    COMPUTE,
    V21,
    base_url,
    host_id,
    links,
    reservation_id,
)
from canopy.api.compute.microversion import APIVersion
from canopy.api.compute.server_view import ServerView, isotime_of
from canopy.config import Settings
from canopy.controllers.summary import attempts_text
from canopy.domain.context import RequestContext
from canopy.domain.states import ServerStatus
from canopy.store.models import Cloud, Flavor, InstanceAction
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

_FIELD_VERSIONS = (3, 9, 16, 19, 26, 47, 63, 71, 73)
_PROGRESS_STATUSES = frozenset({"ACTIVE", "BUILD"})
_FAULT_STATUSES = frozenset({"ERROR", "DELETED"})
_DELETED: str = ServerStatus.DELETED.value


class FlavorShown(Protocol):
    """What an embedded flavor shows of a flavor (`_flavor_of`): a `Flavor` row, or its
    plain reading (api/compute/plain_view.py)."""

    @property
    def name(self) -> str: ...
    @property
    def vcpus(self) -> int: ...
    @property
    def ram_mb(self) -> int: ...
    @property
    def disk_gb(self) -> int: ...
    @property
    def ephemeral_gb(self) -> int: ...
    @property
    def swap_mb(self) -> int: ...
    @property
    def extra_specs(self) -> dict[str, Any] | None: ...


@dataclass
class ViewContext:
    """What rendering a page of servers needs, loaded once per request."""

    request: Request
    settings: Settings
    version: APIVersion
    ctx: RequestContext
    flavors: Mapping[str, FlavorShown] = field(default_factory=dict)
    clouds: dict[str, Cloud] = field(default_factory=dict)
    requests: dict[str, str] = field(default_factory=dict)  # server id -> create request id
    tags: dict[str, list[str]] = field(default_factory=dict)  # server id -> its tags
    user_data: dict[str, str] | None = None  # loaded for one server's show only
    # Computed once per request: the links' prefixes, and the embedded image and flavor
    # of each id met (shared by every entry that names it; nothing mutates them).
    base: str = ""
    self_prefix: str = ""
    bookmark_prefix: str = ""
    images: dict[str, dict[str, Any]] = field(default_factory=dict)
    embedded: dict[str, dict[str, Any]] = field(default_factory=dict)

    admin: bool = False
    at: frozenset[int] = frozenset()  # the microversions (2.N) an entry's fields depend on

    def __post_init__(self) -> None:
        self.admin = self.ctx.is_cloud_admin
        self.at = frozenset(n for n in _FIELD_VERSIONS if self.version.at_least(n))
        self.base = base_url(self.request, self.settings)
        self.self_prefix = f"{self.base}{V21}/servers/"
        self.bookmark_prefix = f"{self.base}{COMPUTE}/servers/"

    def links(self, server_id: str) -> list[dict[str, str]]:
        """`links(request, settings, "servers", id)`, from the prefixes."""
        return [
            {"rel": "self", "href": self.self_prefix + server_id},
            {"rel": "bookmark", "href": self.bookmark_prefix + server_id},
        ]


def view_reads(version: APIVersion, ctx: RequestContext) -> bool:
    """Whether `view_context` reads anything for a page of servers (else the rows are
    enough): tags from 2.26 (and flavors from 2.47), and for an admin from 2.3 the create
    requests (and clouds from 2.16). Keep it in step with `view_context`."""
    return version.at_least(26) or (ctx.is_cloud_admin and version.at_least(3))


async def view_context(
    s: AsyncSession,
    request: Request,
    settings: Settings,
    version: APIVersion,
    ctx: RequestContext,
    ids: Sequence[str],
    *,
    show: bool = False,
) -> ViewContext:
    """Flavors (2.47+) and clouds (admins, 2.16+), small tables read whole, only when a
    field shows them; the tags of each server on the page (2.26+) and, for admins at
    2.3+, the create request of each (its reservation id).

    User data (up to 64 KiB a server) is read only to `show` one server to an admin
    (2.3+); a page of servers never loads it and shows it as null.
    """
    vc = ViewContext(request, settings, version, ctx)
    if not ids:
        return vc
    if version.at_least(26):
        vc.tags = await tags_of(s, ids)
    if show and ctx.is_cloud_admin and version.at_least(3):
        vc.user_data = await user_data_of(s, ids)
    if 47 in vc.at:  # embedded flavors (older versions show the flavor's id and link)
        vc.flavors = {f.id: f for f in (await s.execute(select(Flavor))).scalars()}
    if 16 in vc.at and vc.admin:  # host_status
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


def server_basic(vc: ViewContext, sv: ServerView | Row[Any]) -> dict[str, Any]:
    """GET /servers: id, name, links."""
    return {"id": sv.id, "name": sv.name, "links": vc.links(sv.id)}


def server_detail(vc: ViewContext, sv: ServerView, *, show: bool = False) -> dict[str, Any]:
    """GET /servers/detail and GET /servers/{id} (`show` adds 2.71's server_groups)."""
    at = vc.at
    status = _DELETED if sv.deleted else sv.status
    vm_state = VM_STATE.get(status)
    created, updated = sv.created_at, sv.updated_at
    sid = sv.id
    out: dict[str, Any] = {
        "id": sid,
        "name": sv.name,
        "status": status,
        "tenant_id": sv.project_id,
        "user_id": sv.user_id,
        "metadata": dict(sv.metadata_ or {}),
        "hostId": host_id(sv.project_id, sv.cloud),
        "image": image_of(vc, sv.image_id, sv.boot_from_volume),
        "flavor": embedded_flavor(vc, sv.flavor_id),
        # isotime_of, its common case inline (a year of four digits).
        "created": created[:19] + "Z" if created[4] == "-" else isotime_of(created),
        "updated": updated[:19] + "Z" if updated[4] == "-" else isotime_of(updated),
        "addresses": {} if vm_state == "building" or not sv.addresses else _addresses(sv),
        "accessIPv4": "",
        "accessIPv6": "",
        "links": [
            {"rel": "self", "href": vc.self_prefix + sid},
            {"rel": "bookmark", "href": vc.bookmark_prefix + sid},
        ],
        "OS-DCF:diskConfig": "MANUAL",
        "OS-EXT-AZ:availability_zone": sv.cloud or sv.requested_zone or "",
        "config_drive": "True" if sv.config_drive else "",
        "key_name": sv.key_name,
        "OS-SRV-USG:launched_at": sv.launched_at,
        "OS-SRV-USG:terminated_at": sv.terminated_at,
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
    if vc.admin:
        _extended_attributes(vc, sv, out)
    if 9 in at:
        out["locked"] = sv.locked
    if 16 in at and vc.admin:
        out["host_status"] = host_status(vc, sv.cloud)
    if 19 in at:
        out["description"] = sv.description
    if 26 in at:
        out["tags"] = list(vc.tags.get(sv.id, ()))
    if 63 in at:
        out["trusted_image_certificates"] = None
    if show and 71 in at:
        out["server_groups"] = [sv.group_id] if sv.group_id else []
    if 73 in at:
        out["locked_reason"] = sv.locked_reason
    return out


def image_of(vc: ViewContext, image_id: str | None, from_volume: Any) -> dict[str, Any] | str:
    """The embedded image ("" when booted from a volume), one dict per id a request."""
    if not image_id or from_volume:
        return ""
    out = vc.images.get(image_id)
    if out is None:
        href = f"{vc.base}{COMPUTE}/images/{image_id}"
        out = vc.images[image_id] = {"id": image_id, "links": [{"rel": "bookmark", "href": href}]}
    return out


def embedded_flavor(vc: ViewContext, flavor_id: str) -> dict[str, Any]:
    """The embedded flavor (its id and link before 2.47), one dict per id a request."""
    out = vc.embedded.get(flavor_id)
    if out is None:
        out = vc.embedded[flavor_id] = _flavor_of(vc, flavor_id)
    return out


def _flavor_of(vc: ViewContext, flavor_id: str) -> dict[str, Any]:
    if not vc.version.at_least(47):
        href = f"{vc.base}{COMPUTE}/flavors/{flavor_id}"
        return {"id": flavor_id, "links": [{"rel": "bookmark", "href": href}]}
    f = vc.flavors.get(flavor_id)
    if f is None:
        return {}
    return {
        "vcpus": f.vcpus,
        "ram": f.ram_mb,
        "disk": f.disk_gb,
        "ephemeral": f.ephemeral_gb,
        "swap": f.swap_mb,
        "original_name": f.name,
        "extra_specs": dict(f.extra_specs or {}),
    }


def _addresses(sv: ServerView) -> dict[str, list[dict[str, Any]]]:
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


@lru_cache(maxsize=4096)  # the pages clients keep asking for (a few hundred KB)
def mac_address(server_id: str, network: str) -> str:
    """A stable, locally administered MAC (OpenStack's fa:16:3e prefix) per server NIC."""
    digest = hashlib.sha256(f"{server_id}/{network}".encode()).digest()
    return "fa:16:3e:" + digest[:3].hex(":")


def _fault(vc: ViewContext, sv: ServerView) -> dict[str, Any] | None:
    if sv.fault_message is None and sv.fault_code is None:
        return None
    fault: dict[str, Any] = {
        "code": sv.fault_code or 500,
        "created": isotime_of(sv.fault_at or sv.updated_at),
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


def _extended_attributes(vc: ViewContext, sv: ServerView, out: dict[str, Any]) -> None:
    """OS-EXT-SRV-ATTR:* (admins): the cloud is the host and the node."""
    out["OS-EXT-SRV-ATTR:host"] = sv.cloud
    out["OS-EXT-SRV-ATTR:instance_name"] = sv.remote_id or ""
    out["OS-EXT-SRV-ATTR:hypervisor_hostname"] = sv.cloud
    if 3 in vc.at:
        rid = vc.requests.get(sv.id)
        out["OS-EXT-SRV-ATTR:hostname"] = hostname(sv.name)
        out["OS-EXT-SRV-ATTR:kernel_id"] = ""
        out["OS-EXT-SRV-ATTR:launch_index"] = sv.launch_index
        out["OS-EXT-SRV-ATTR:ramdisk_id"] = ""
        out["OS-EXT-SRV-ATTR:reservation_id"] = reservation_id(rid) if rid else None
        out["OS-EXT-SRV-ATTR:root_device_name"] = None
        out["OS-EXT-SRV-ATTR:user_data"] = (vc.user_data or {}).get(sv.id)


def host_status(vc: ViewContext, cloud: str | None) -> str:
    """2.16's host_status, for the cloud the server lives on."""
    if not cloud:
        return ""
    c = vc.clouds.get(cloud)
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
        out["description"] = f.description
    return out


def flavor_detail(request: Request, settings: Settings, v: APIVersion, f: Flavor) -> dict[str, Any]:
    out = flavor_basic(request, settings, v, f)
    out.update(
        {
            "ram": f.ram_mb,
            "disk": f.disk_gb,
            # Nova shows no swap as "" before 2.75.
            "swap": f.swap_mb if f.swap_mb or v.at_least(75) else "",
            "OS-FLV-EXT-DATA:ephemeral": f.ephemeral_gb,
            "OS-FLV-DISABLED:disabled": False,
            "vcpus": f.vcpus,
            "os-flavor-access:is_public": f.is_public,
            "rxtx_factor": f.rxtx_factor,
        }
    )
    if v.at_least(61):
        out["extra_specs"] = dict(f.extra_specs or {})
    return out
