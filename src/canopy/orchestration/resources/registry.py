"""The resource types canopy supports: an explicit table, name -> type (no look-ups by
reflection). A template naming any other type is refused with the list of these."""

from __future__ import annotations

from collections.abc import Mapping

from canopy.domain.errors import InvalidRequest
from canopy.orchestration.resources.base import ResourceType
from canopy.orchestration.resources.ec2_instance import Ec2Instance
from canopy.orchestration.resources.nova_extras import KeyPair, ServerGroup
from canopy.orchestration.resources.server import NovaServer
from canopy.orchestration.resources.simple import NoneResource, RandomString, TestResource, Value
from canopy.orchestration.resources.software_config import (
    CloudConfig,
    MultipartMime,
    SoftwareConfig,
)

TYPES: Mapping[str, ResourceType] = {
    t.name: t
    for t in (
        NovaServer(),
        RandomString(),
        Value(),
        NoneResource(),
        TestResource(),
        Ec2Instance(),
        KeyPair(),
        ServerGroup(),
        SoftwareConfig(),
        CloudConfig(),
        MultipartMime(),
    )
}


def resource_type(name: str, where: str = "") -> ResourceType:
    """The type called `name`, or InvalidRequest naming every supported type."""
    found = TYPES.get(name)
    if found is None:
        at = f"{where}: " if where else ""
        raise InvalidRequest(
            f"{at}The Resource Type ({name}) could not be found. Canopy supports: "
            + ", ".join(sorted(TYPES))
            + "."
        )
    return found
