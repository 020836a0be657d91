"""OS::Nova::Server: a canopy server, created and deleted through the service layer.

So the scheduler places it like any server (bursting, zones, the explanation), quotas and
claims apply, and the provisioning, sync and power controllers do the cloud calls. The
resource waits on the server row: ACTIVE completes it, ERROR fails it with the server's
fault. Canopy has no Neutron: `networks` and `security_groups` are accepted and recorded,
and each server gets the addresses its cloud gives it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from canopy.domain.errors import CanopyError, InvalidRequest, NotFound
from canopy.domain.states import ServerStatus
from canopy.orchestration.resources.base import Lookups, Progress, Prop, Step, updatable
from canopy.services.server_create import CreateServer
from canopy.store.models import Placement, Server, StackResource

MAX_USER_DATA = 65535


class NovaServer:
    name = "OS::Nova::Server"
    description = "A server, placed by canopy's scheduler on one of its clouds."
    open_properties = False
    properties: Mapping[str, Prop] = {
        "name": Prop(
            "string", "Server name (default: stack-resource-random).", update_allowed=True
        ),
        "flavor": Prop("string", "Flavor name or id.", required=True),
        "image": Prop("string", "Image name or id.", required=True),
        "key_name": Prop("string", "Name of a keypair of the stack's user."),
        "availability_zone": Prop("string", "A cloud's name: pins the server there."),
        "user_data": Prop("string", "User data (passed to the server as given)."),
        "user_data_format": Prop(
            "string",
            "Accepted; canopy passes user_data as it is whatever the format.",
            default="HEAT_CFNTOOLS",
            allowed=("HEAT_CFNTOOLS", "RAW", "SOFTWARE_CONFIG"),
        ),
        "software_config_transport": Prop("string", "Accepted and ignored."),
        "metadata": Prop("map", "Server metadata (non-string values are sent as JSON)."),
        "networks": Prop("list", "Accepted and recorded: canopy has no Neutron."),
        "security_groups": Prop("list", "Accepted and recorded: canopy has no Neutron."),
        "scheduler_hints": Prop("map", "Scheduler hints (e.g. group)."),
        "config_drive": Prop("boolean", "Ask for a config drive."),
        "admin_pass": Prop("string", "Accepted and ignored."),
        "diskConfig": Prop("string", "Accepted and ignored."),
        "flavor_update_policy": Prop("string", "Accepted; a flavor change replaces the server."),
        "image_update_policy": Prop("string", "Accepted; an image change replaces the server."),
    }
    attributes: Mapping[str, str] = {
        "name": "Name of the server.",
        "first_address": "The first address of the server (deprecated in Heat).",
        "addresses": "Addresses per network, as Nova shows them.",
        "networks": "Addresses per network, as plain lists.",
        "accessIPv4": "The first IPv4 address.",
        "accessIPv6": "The first IPv6 address.",
        "instance_name": "Name of the server in its cloud.",
        "show": "The server as canopy shows it.",
        "canopy": "Canopy's extension: the cloud and zone the server is on, and why.",
    }

    def reference(self, res: StackResource) -> Any:
        return res.physical_resource_id or None

    def validate(self, props: Mapping[str, Any], known: Lookups) -> None:
        flavor, image = props.get("flavor"), props.get("image")
        if flavor is not None and flavor not in known.flavors:
            raise InvalidRequest(f"Error validating value '{flavor}': No Flavor matching {flavor}.")
        if image is not None and image not in known.images:
            raise InvalidRequest(f"Error validating value '{image}': No Image matching {image}.")
        key = props.get("key_name")
        if key is not None and key not in known.keypairs:
            raise InvalidRequest(
                f"Error validating value '{key}': The Key ({key}) could not be found."
            )
        zone = props.get("availability_zone")
        if zone not in (None, "", "nova") and zone not in known.zones:
            raise InvalidRequest(
                f"The requested availability zone is not available: {zone!r}. Canopy's zones "
                f"are its clouds: {', '.join(sorted(known.zones))}."
            )
        data = props.get("user_data")
        if data is not None and len(base64.b64encode(data.encode())) > MAX_USER_DATA:
            raise InvalidRequest(f"user_data is longer than Nova's {MAX_USER_DATA} bytes (base64).")

    def in_place(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
        return updatable(self.properties, old, new)

    async def create(self, step: Step, res: StackResource) -> Progress:
        if res.server_id is not None:
            return Progress()  # created by an earlier step: wait for it
        p = res.properties
        zone = p.get("availability_zone") or None
        req = CreateServer(
            name=p.get("name") or f"{step.stack.name}-{res.name}-{res.id[:8]}",
            flavor=p["flavor"],
            image=p["image"],
            availability_zone=None if zone == "nova" else zone,
            key_name=p.get("key_name"),
            metadata=_metadata(p.get("metadata")),
            hints=dict(p.get("scheduler_hints") or {}),
            group_id=(p.get("scheduler_hints") or {}).get("group"),
            user_data=_encode(p.get("user_data")),
            config_drive=bool(p.get("config_drive")),
        )
        try:
            # A savepoint: a refused request leaves nothing of itself in the step.
            async with step.session.begin_nested():
                [server] = await step.servers.create(step.ctx, req, session=step.session)
        except CanopyError as e:
            return Progress.failure(f"{type(e).__name__}: {e}")
        res.server_id = server.id
        res.physical_resource_id = server.id
        return Progress()

    async def update(self, step: Step, res: StackResource, new: dict[str, Any]) -> Progress:
        if (
            res.server_id is not None
            and new.get("name")
            and new["name"] != res.properties.get("name")
        ):
            try:
                await step.servers.update(
                    step.ctx, res.server_id, name=new["name"], session=step.session
                )
            except CanopyError as e:
                return Progress.failure(f"{type(e).__name__}: {e}")
        res.properties = new
        return await self.check(step, res)

    async def delete(self, step: Step, res: StackResource) -> Progress:
        if res.server_id is None:
            return Progress.complete()
        try:
            await step.servers.delete(step.ctx, res.server_id, session=step.session)
        except NotFound:
            return Progress.complete()
        return await self.check(step, res)

    async def check(self, step: Step, res: StackResource) -> Progress:
        if res.server_id is None:
            return Progress.complete() if res.action == "DELETE" else Progress()
        server = await step.session.get(Server, res.server_id)
        if res.action == "DELETE":
            return Progress.complete() if server is None or server.deleted else Progress()
        if server is None or server.deleted:
            return Progress.failure(f"Server {res.server_id} was deleted outside the stack.")
        if server.status == ServerStatus.ERROR:
            why = server.fault_message or "the server went to ERROR"
            return Progress.failure(f'ResourceInError: Went to status ERROR due to "{why}"')
        if server.status in (ServerStatus.ACTIVE, ServerStatus.SHUTOFF):
            res.attributes = await attributes(step, server)
            return Progress.complete()
        return Progress()


def _metadata(raw: Any) -> dict[str, str]:
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in (raw or {}).items()}


def _encode(text: str | None) -> str | None:
    return None if text is None else base64.b64encode(text.encode()).decode()


async def attributes(step: Step, server: Server) -> dict[str, Any]:
    """What get_attr reads of a server, recorded when it completes."""
    nets: dict[str, list[str]] = {}
    nova: dict[str, list[dict[str, Any]]] = {}
    for net, addrs in (server.addresses or {}).items():
        for a in addrs if isinstance(addrs, list) else []:
            addr = a.get("addr") if isinstance(a, dict) else str(a)
            if not addr:
                continue
            version = 6 if ":" in addr else 4
            nets.setdefault(str(net), []).append(addr)
            nova.setdefault(str(net), []).append(
                {"addr": addr, "version": version, "OS-EXT-IPS:type": "fixed"}
            )
    flat = [a for addrs in nets.values() for a in addrs]
    placement = (
        await step.session.execute(
            select(Placement)
            .where(Placement.server_id == server.id)
            .order_by(Placement.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    why = placement.reason if placement is not None else ""
    canopy = {"cloud": server.cloud, "zone": server.zone or server.cloud, "reason": why}
    return {
        "name": server.name,
        "first_address": flat[0] if flat else "",
        "addresses": nova,
        "networks": nets,
        "accessIPv4": next((a for a in flat if ":" not in a), ""),
        "accessIPv6": next((a for a in flat if ":" in a), ""),
        "instance_name": server.remote_id or "",
        "show": {
            "id": server.id,
            "name": server.name,
            "status": server.status,
            "flavor": {"id": server.flavor_id},
            "image": {"id": server.image_id or ""},
            "addresses": nova,
            "metadata": dict(server.metadata_ or {}),
            "OS-EXT-AZ:availability_zone": server.cloud,
        },
        "canopy": canopy,
    }
