"""OS::Nova::Server: a canopy server (the steps are `server_common.ServerBase`).

Canopy has no Neutron: `networks` and `security_groups` are accepted and recorded, and each
server gets the addresses its cloud gives it. `user_data` with `user_data_format` RAW or
SOFTWARE_CONFIG may name a software config resource (OS::Heat::SoftwareConfig, CloudConfig,
MultipartMime) by id, as `get_resource` gives it: the server gets that config's text, as
Heat's server does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from canopy.orchestration.resources.base import Lookups, Progress, Prop, Step
from canopy.orchestration.resources.server_common import (
    ServerBase,
    encode,
    tags_of,
    zone_of,
)
from canopy.orchestration.resources.software_config import config_text
from canopy.services.server_create import CreateServer
from canopy.store.models import StackResource


class NovaServer(ServerBase):
    name = "OS::Nova::Server"
    description = "A server, placed by canopy's scheduler on one of its clouds."
    keys = {
        "flavor": "flavor",
        "image": "image",
        "key_name": "key_name",
        "zone": "availability_zone",
        "user_data": "user_data",
        "metadata": "metadata",
    }
    properties: Mapping[str, Prop] = {
        "name": Prop(
            "string", "Server name (default: stack-resource-random).", update_allowed=True
        ),
        "flavor": Prop("string", "Flavor name or id.", required=True),
        "image": Prop("string", "Image name or id.", required=True),
        "key_name": Prop("string", "Name of a keypair of the stack's user."),
        "availability_zone": Prop("string", "A cloud's name: pins the server there."),
        "user_data": Prop(
            "string",
            "User data, or (RAW, SOFTWARE_CONFIG) the id of a software config. A change "
            "replaces the server, or is ignored (user_data_update_policy).",
            update_allowed=True,
            strict=True,
        ),
        "user_data_update_policy": Prop(
            "string",
            "What a change of user_data does: REPLACE the server, or IGNORE it (the server "
            "keeps the user data it booted with).",
            default="REPLACE",
            allowed=("REPLACE", "IGNORE"),
            update_allowed=True,
        ),
        "user_data_format": Prop(
            "string",
            "RAW and SOFTWARE_CONFIG read a software config's text when user_data is its id; "
            "otherwise user_data is passed as it is.",
            default="HEAT_CFNTOOLS",
            allowed=("HEAT_CFNTOOLS", "RAW", "SOFTWARE_CONFIG"),
        ),
        "software_config_transport": Prop("string", "Accepted and ignored."),
        "metadata": Prop(
            "map",
            "Server metadata (non-string values are sent as JSON); changed in place, in "
            "canopy's record (the cloud's copy keeps the create-time metadata).",
            update_allowed=True,
        ),
        "tags": Prop("list", "Server tags (Nova 2.26): strings.", update_allowed=True),
        "networks": Prop("list", "Accepted and recorded: canopy has no Neutron."),
        "security_groups": Prop("list", "Accepted and recorded: canopy has no Neutron."),
        "scheduler_hints": Prop(
            "map", "Scheduler hints; group (a server group's id) places by its policy."
        ),
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

    async def request(self, step: Step, res: StackResource) -> CreateServer:
        p = res.properties
        data = p.get("user_data")
        if data is not None and p.get("user_data_format") in ("RAW", "SOFTWARE_CONFIG"):
            data = await config_text(step, data)
        hints = dict(p.get("scheduler_hints") or {})
        group = hints.get("group")
        return CreateServer(
            name=p.get("name") or self.new_name(step, res),
            flavor=p["flavor"],
            image=p["image"],
            availability_zone=zone_of(p.get("availability_zone")),
            key_name=p.get("key_name"),
            metadata=self.server_metadata(p),
            hints=hints,
            group_id=group if isinstance(group, str) and group else None,
            user_data=encode(data),
            config_drive=bool(p.get("config_drive")),
            tags=tags_of(p.get("tags")),
        )

    def validate(self, props: Mapping[str, Any], known: Lookups) -> None:
        super().validate(props, known)
        tags = props.get("tags")
        if tags is not None:
            tags_of(tags)

    def in_place(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
        """Heat's rule: a user_data change replaces the server unless the new
        user_data_update_policy is IGNORE; the other changes need update_allowed."""
        if not super().in_place(old, new):
            return False
        if old.get("user_data") != new.get("user_data"):
            return new.get("user_data_update_policy") == "IGNORE"
        return True

    async def update(self, step: Step, res: StackResource, new: dict[str, Any]) -> Progress:
        for change in (self.rename, self.set_metadata, self.set_tags):
            failed = await change(step, res, new)
            if failed is not None:
                return failed
        return await super().update(step, res, new)
