"""Request bodies of the servers API, with Nova's per-microversion rules.

The models accept every field any version up to MAX_VERSION knows; `check_create` then
refuses the fields the request's version does not (Nova's `additionalProperties: false`),
so a field is never silently dropped.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from canopy.api.compute.microversion import APIVersion
from canopy.domain.errors import InvalidRequest

Name = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=60)]
MetaKey = Annotated[str, StringConstraints(min_length=1, max_length=255)]
MetaValue = Annotated[str, StringConstraints(max_length=255)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class NetworkRequest(_Strict):
    uuid: str | None = None
    port: str | None = None
    fixed_ip: str | None = None
    tag: Tag | None = None


class BlockDevice(_Strict):
    """One block_device_mapping_v2 entry (OSC sends one for every image boot)."""

    source_type: Literal["volume", "image", "snapshot", "blank"] | None = None
    destination_type: Literal["local", "volume"] | None = None
    uuid: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None
    image_id: str | None = None
    volume_id: str | None = None
    snapshot_id: str | None = None
    boot_index: int | str | None = None
    delete_on_termination: bool | None = None
    volume_size: int | str | None = None
    device_name: Annotated[str, StringConstraints(max_length=255)] | None = None
    device_type: Annotated[str, StringConstraints(max_length=255)] | None = None
    disk_bus: Annotated[str, StringConstraints(max_length=255)] | None = None
    guest_format: Annotated[str, StringConstraints(max_length=255)] | None = None
    virtual_name: Annotated[str, StringConstraints(max_length=255)] | None = None
    no_device: Any = None
    connection_info: str | None = None
    tag: Tag | None = None
    volume_type: Annotated[str, StringConstraints(max_length=255)] | None = None


class SecurityGroupRef(_Strict):
    name: Name


class ServerCreate(_Strict):
    name: Name
    flavorRef: str | int
    imageRef: str | None = None
    min_count: int = Field(default=1, ge=1)
    max_count: int | None = Field(default=None, ge=1)
    networks: list[NetworkRequest] | Literal["auto", "none"] | None = None
    availability_zone: Name | None = None
    metadata: dict[MetaKey, MetaValue] = Field(default_factory=dict)
    key_name: Name | None = None
    block_device_mapping_v2: list[BlockDevice] | None = None
    block_device_mapping: list[dict[str, Any]] | None = None
    security_groups: list[SecurityGroupRef] | None = None
    user_data: Annotated[str, StringConstraints(max_length=65535)] | None = None
    config_drive: bool | None = None
    return_reservation_id: bool = False
    adminPass: str | None = None
    accessIPv4: str | None = None
    accessIPv6: str | None = None
    disk_config: Literal["AUTO", "MANUAL"] | None = Field(default=None, alias="OS-DCF:diskConfig")
    personality: list[dict[str, Any]] | None = None
    description: Annotated[str, StringConstraints(max_length=255)] | None = None
    tags: list[Tag] | None = Field(default=None, max_length=50)
    trusted_image_certificates: list[str] | None = None
    host: Name | None = None
    hypervisor_hostname: Name | None = None


class CreateBody(_Strict):
    server: ServerCreate
    hints: dict[str, Any] | None = Field(default=None, alias="os:scheduler_hints")
    hints_legacy: dict[str, Any] | None = Field(default=None, alias="OS-SCH-HNT:scheduler_hints")


class ServerUpdate(_Strict):
    name: Name | None = None
    description: Annotated[str, StringConstraints(max_length=255)] | None = None
    accessIPv4: str | None = None
    accessIPv6: str | None = None
    disk_config: Literal["AUTO", "MANUAL"] | None = Field(default=None, alias="OS-DCF:diskConfig")


class UpdateBody(_Strict):
    server: ServerUpdate


class TagsBody(_Strict):
    tags: list[Tag] = Field(max_length=50)


class MetadataBody(_Strict):
    """PUT (replace) and POST (merge) /servers/{id}/metadata."""

    metadata: dict[MetaKey, MetaValue]


class MetaItemBody(_Strict):
    """PUT /servers/{id}/metadata/{key}: exactly that one key."""

    meta: dict[MetaKey, MetaValue] = Field(min_length=1, max_length=1)


# Per-version rules ----------------------------------------------------------------------


def _unexpected(where: str, name: str) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid input for field/attribute {where}. Additional properties are not allowed "
        f"('{name}' was unexpected)"
    )


def _bdm_tag_allowed(v: APIVersion) -> bool:
    return v == APIVersion(2, 32) or v.at_least(42)


def _network_tag_allowed(v: APIVersion) -> bool:
    return (v.at_least(32) and not v.at_least(37)) or v.at_least(42)


def check_create(body: CreateBody, v: APIVersion) -> None:
    """Refuse what this microversion does not accept, with Nova's words."""
    server = body.server
    given = server.model_fields_set
    gated = {
        "description": v.at_least(19),
        "tags": v.at_least(52),
        "personality": not v.at_least(57),
        "trusted_image_certificates": v.at_least(63),
        "host": v.at_least(74),
        "hypervisor_hostname": v.at_least(74),
    }
    for name, allowed in gated.items():
        if name in given and not allowed:
            raise _unexpected("server", name)
    if v.at_least(37) and "networks" not in given:
        raise InvalidRequest(
            "Invalid input for field/attribute server. 'networks' is a required property"
        )
    nets = server.networks
    if isinstance(nets, str) and not v.at_least(37):
        raise InvalidRequest(
            f"Invalid input for field/attribute networks. Value: {nets}. "
            f"'{nets}' is not of type 'array'"
        )
    if isinstance(nets, list):
        for net in nets:
            if net.tag is not None and not _network_tag_allowed(v):
                raise _unexpected("networks", "tag")
            if net.uuid is None and net.port is None:
                raise InvalidRequest("Bad network format: missing 'uuid'")
            if net.uuid is not None and v.at_least(37) and not _is_uuid(net.uuid):
                raise InvalidRequest(
                    f"Invalid input for field/attribute uuid. Value: {net.uuid}. "
                    f"'{net.uuid}' is not a 'uuid'"
                )
    for bdm in server.block_device_mapping_v2 or []:
        if bdm.source_type is None:
            raise InvalidRequest(
                "Block Device Mapping is Invalid: Invalid source_type field (it is required)."
            )
        index = bdm.boot_index
        if isinstance(index, str) and not re.fullmatch(r"-?[0-9]+", index):
            raise InvalidRequest(
                f"Invalid input for field/attribute boot_index. Value: {index}. "
                f"'{index}' does not match '^-?[0-9]+$'"
            )
        if bdm.tag is not None and not _bdm_tag_allowed(v):
            raise _unexpected("block_device_mapping_v2", "tag")
        if bdm.volume_type is not None and not v.at_least(67):
            raise _unexpected("block_device_mapping_v2", "volume_type")
    if server.max_count is not None and server.min_count > server.max_count:
        raise InvalidRequest("min_count must be <= max_count")
    if server.user_data is not None:
        try:
            base64.b64decode(server.user_data, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequest(
                "Invalid input for field/attribute user_data. Value: (user data). "
                "It is not a 'base64' string"
            ) from None
    if server.name != server.name.strip():
        raise InvalidRequest(
            f"Invalid input for field/attribute name. Value: {server.name}. "
            "Leading and trailing whitespace is not allowed."
        )


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
