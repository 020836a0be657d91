"""OS::Heat::SoftwareConfig, CloudConfig and MultipartMime: configuration text, kept in the
stack's own rows (pure: no cloud, nothing to wait for).

`get_resource` gives a config's id (its row's id, a UUID) and `get_attr [cfg, config]` its
text. As in Heat, a server whose `user_data_format` is RAW or SOFTWARE_CONFIG and whose
`user_data` is such an id gets the config's text (`config_text`), and a MultipartMime part
whose `config` is one is replaced by its text; an id of nothing stays as it is. Configs are
the project's: a stack may use another stack's config by id.
"""

from __future__ import annotations

import email
import json
import os
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from typing import Any

import yaml

from canopy.domain.errors import InvalidRequest
from canopy.orchestration.resources.base import Lookups, Progress, Prop, Step
from canopy.orchestration.resources.simple import _Local
from canopy.orchestration.software_rows import find_config
from canopy.store.models import Stack, StackResource

UNGROUPED = "Heat::Ungrouped"
MAX_CONFIG = 1 << 20  # a config's text, bytes


class _Config(_Local, ABC):
    """A config: its reference is its id; its text is built once, at create."""

    attributes: Mapping[str, str] = {"config": "The config text."}

    def reference(self, res: StackResource) -> Any:
        return res.physical_resource_id or None

    def in_place(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
        return False  # a config never changes: a new one is made, as Heat does

    @abstractmethod
    async def text(self, step: Step, props: Mapping[str, Any]) -> str:
        """The config's text for `props` (built once, at create)."""

    async def create(self, step: Step, res: StackResource) -> Progress:
        try:
            text = await self.text(step, res.properties)
        except InvalidRequest as e:
            return Progress.failure(str(e))
        if len(text.encode()) > MAX_CONFIG:
            return Progress.failure(f"The config is longer than {MAX_CONFIG} bytes.")
        res.physical_resource_id = res.id
        res.attributes = {"config": text}
        return Progress.complete()


_IO = Prop("list", "Inputs or outputs: each a map with name, type, description, default.")


class SoftwareConfig(_Config):
    name = "OS::Heat::SoftwareConfig"
    description = "A configuration script or document, for a server's user_data."
    properties = {
        "config": Prop("string", "The configuration text."),
        "group": Prop("string", "The tool that applies it.", default=UNGROUPED),
        "inputs": _IO,
        "outputs": _IO,
        "options": Prop("map", "Options for the group's tool."),
    }

    def validate(self, props: Mapping[str, Any], known: Lookups) -> None:
        for key in ("inputs", "outputs"):
            check_io(key, props.get(key))

    async def text(self, step: Step, props: Mapping[str, Any]) -> str:
        return str(props.get("config") or "")


class StructuredConfig(SoftwareConfig):
    """Heat's StructuredConfig: a SoftwareConfig whose config is a map, kept and shown as
    data (its `config` attribute is the map). Its `get_input` maps are left as they are:
    a StructuredDeployment substitutes them (get_input is no template function)."""

    name = "OS::Heat::StructuredConfig"
    description = "A configuration data structure (a map), for structured deployments."
    properties = {
        **SoftwareConfig.properties,
        "config": Prop("map", "The configuration data, serialised as JSON for the tool."),
    }

    async def create(self, step: Step, res: StackResource) -> Progress:
        data = dict(res.properties.get("config") or {})
        if len(json.dumps(data).encode()) > MAX_CONFIG:
            return Progress.failure(f"The config is longer than {MAX_CONFIG} bytes.")
        res.physical_resource_id = res.id
        res.attributes = {"config": data}
        return Progress.complete()

    async def text(self, step: Step, props: Mapping[str, Any]) -> str:
        return json.dumps(props.get("config") or {})


class SoftwareComponent(SoftwareConfig):
    """Heat's SoftwareComponent: one config per set of lifecycle actions, kept as the
    config `{"configs": [...]}` of group `component`; a deployment of it runs for the
    actions its configs name (not for its own `actions`)."""

    name = "OS::Heat::SoftwareComponent"
    description = "A software component: a config (and its tool) per lifecycle action."
    properties = {
        "configs": Prop(
            "list",
            "Each {actions (default [CREATE, UPDATE]), config, tool}: the config for those "
            "actions and the tool that applies it.",
            required=True,
        ),
        "inputs": _IO,
        "outputs": _IO,
        "options": Prop("map", "Options for the tools."),
    }
    attributes: Mapping[str, str] = {
        "config": "The config: {configs: [...]}.",
        "configs": "The configs, one per set of lifecycle actions.",
    }

    def validate(self, props: Mapping[str, Any], known: Lookups) -> None:
        super().validate(props, known)
        configs = props.get("configs")
        if configs is None:
            return
        if not isinstance(configs, list) or not configs:
            raise InvalidRequest("configs: a list of at least one config.")
        seen: set[str] = set()
        for i, entry in enumerate(configs):
            where = f"configs[{i}]"
            if not isinstance(entry, Mapping):
                raise InvalidRequest(f"{where} must be a map.")
            unknown = sorted(set(entry) - {"actions", "config", "tool"})
            if unknown:
                raise InvalidRequest(f"{where}: Unknown Property {unknown[0]}.")
            if not isinstance(entry.get("tool"), str):
                raise InvalidRequest(f"{where}: Property tool not assigned")
            actions = entry.get("actions", ["CREATE", "UPDATE"])
            if not isinstance(actions, list) or not actions:
                raise InvalidRequest(f"{where}.actions: a list of at least one action.")
            if any(a in seen for a in actions):
                raise InvalidRequest(
                    "Defining more than one configuration for the same action in "
                    "SoftwareComponent is not allowed."
                )
            seen.update(str(a) for a in actions)

    async def create(self, step: Step, res: StackResource) -> Progress:
        configs = [
            {
                "actions": list(entry.get("actions") or ["CREATE", "UPDATE"]),
                "config": entry.get("config"),
                "tool": entry.get("tool"),
            }
            for entry in res.properties.get("configs") or []
        ]
        if len(json.dumps(configs).encode()) > MAX_CONFIG:
            return Progress.failure(f"The config is longer than {MAX_CONFIG} bytes.")
        res.physical_resource_id = res.id
        res.attributes = {"config": {"configs": configs}, "configs": configs}
        return Progress.complete()


IO_TYPES = ("String", "Number", "CommaDelimitedList", "Json", "Boolean")


def check_io(key: str, items: Any) -> None:
    """A config's inputs or outputs as Heat refuses them (InvalidRequest)."""
    if items is None:
        return
    if not isinstance(items, list):
        raise InvalidRequest(f"{key}: Software Config I/O Schema must be in a list.")
    for item in items:
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            raise InvalidRequest(f"{key}: each item is a map with a name.")
        kind = item.get("type")
        if kind is not None and kind not in IO_TYPES:
            raise InvalidRequest(
                f"{key}.{item['name']}.type: {kind!r} is not one of the allowed values: "
                + ", ".join(IO_TYPES)
                + "."
            )


class CloudConfig(_Config):
    name = "OS::Heat::CloudConfig"
    description = "A cloud-init #cloud-config document from a map."
    properties = {"cloud_config": Prop("map", "The cloud-config data.", default={})}

    async def text(self, step: Step, props: Mapping[str, Any]) -> str:
        return cloud_config(props.get("cloud_config") or {})


def cloud_config(data: Mapping[str, Any]) -> str:
    body = yaml.safe_dump(dict(data), default_flow_style=False) if data else ""
    return "#cloud-config\n" + body


_PART_KEYS = ("config", "filename", "type", "subtype")


class MultipartMime(_Config):
    name = "OS::Heat::MultipartMime"
    description = "A multipart MIME message of configs (cloud-init's format)."
    properties = {
        "parts": Prop("list", "Parts: each {config, filename, type: text|multipart, subtype}."),
        "group": Prop("string", "The tool that applies it.", default=UNGROUPED),
    }

    def validate(self, props: Mapping[str, Any], known: Lookups) -> None:
        for i, part in enumerate(props.get("parts") or []):
            where = f"parts[{i}]"
            if not isinstance(part, Mapping):
                raise InvalidRequest(f"{where} must be a map.")
            unknown = sorted(set(part) - set(_PART_KEYS))
            if unknown:
                raise InvalidRequest(f"{where}: Unknown Property {unknown[0]}.")
            if "config" not in part:
                raise InvalidRequest(f"{where}: Property config not assigned")
            if part.get("type", "text") not in ("text", "multipart"):
                raise InvalidRequest(f"{where}.type: must be text or multipart.")

    async def text(self, step: Step, props: Mapping[str, Any]) -> str:
        self.validate(props, Lookups())
        subparts: list[Message] = []
        for part in props.get("parts") or []:
            content = await config_text(step, str(part.get("config") or ""))
            if part.get("type", "text") == "multipart":
                subparts.extend(_parts_of(content))
            else:
                subparts.append(
                    _text_part(content, part.get("subtype") or "", part.get("filename") or "")
                )
        return MIMEMultipart(_subparts=subparts).as_string()


def _parts_of(message: str) -> list[Message]:
    """The parts of a multipart message, each made again as a text part."""
    found = email.message_from_string(message)
    if not found.is_multipart():
        return []
    out: list[Message] = []
    for part in found.get_payload():
        if isinstance(part, Message):
            payload = part.get_payload(decode=True)
            body = payload.decode() if isinstance(payload, bytes) else str(part.get_payload())
            out.append(_text_part(body, part.get_content_subtype(), part.get_filename() or ""))
    return out


def _text_part(body: str, subtype: str, filename: str) -> Message:
    if not subtype and filename:
        subtype = os.path.splitext(filename)[0]  # Heat's rule
    try:
        body.encode("us-ascii")
        charset = "us-ascii"
    except UnicodeEncodeError:
        charset = "utf-8"
    msg = MIMEText(body, subtype or "plain", charset)
    if filename:
        msg.add_header("Content-Disposition", "attachment", filename=filename)
    return msg


CONFIG_TYPES = (
    SoftwareConfig.name,
    StructuredConfig.name,
    SoftwareComponent.name,
    CloudConfig.name,
    MultipartMime.name,
)


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


async def config_text(step: Step, value: str) -> str:
    """The text of the project's software config whose id is `value` (a stack's config
    resource, or a config made through the API); else `value`."""
    if not is_uuid(value.strip()):
        return value
    row = await step.session.get(StackResource, value.strip())
    if row is None:  # a config made through the API (`openstack software config create`)
        made = await find_config(step.session, step.stack.project_id, value.strip())
        text = made.body.get("config") if made is not None else None
        return text if isinstance(text, str) else value
    if row.type not in CONFIG_TYPES:
        return value
    owner = await step.session.get(Stack, row.stack_id)
    if owner is None or owner.project_id != step.stack.project_id:
        return value
    text = (row.attributes or {}).get("config")
    return text if isinstance(text, str) else value
