"""OS::Heat::SoftwareDeploymentGroup and StructuredDeploymentGroup (and their old names
OS::Heat::SoftwareDeployments, StructuredDeployments): one deployment per server of the
`servers` map, as Heat's: a ResourceGroup whose members are named by the map's keys.

Each member is a SoftwareDeployment (StructuredDeployment) of the group's properties with
`server` set to its map value; each takes its agent's signal at its own URL (a member's
signal route, `.../resources/<group>.<name>/signal`). `deploy_stdouts`, `deploy_stderrs`
and `deploy_status_codes` are maps name -> that member attribute, and any other attribute
name (a config's output) is the map of that attribute, as in Heat.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from canopy.domain.errors import InvalidRequest
from canopy.orchestration.attribute_paths import dig
from canopy.orchestration.resources import group_attrs, rolling
from canopy.orchestration.resources.base import Lookups, Prop
from canopy.orchestration.resources.group import ResourceGroup
from canopy.orchestration.resources.members import Wanted
from canopy.orchestration.resources.software_deployment import (
    SoftwareDeployment,
    StructuredDeployment,
)
from canopy.store.models import StackResource

MAX_SERVERS = 1000
_PER_MEMBER = {
    "deploy_stdouts": "deploy_stdout",
    "deploy_stderrs": "deploy_stderr",
    "deploy_status_codes": "deploy_status_code",
}


class SoftwareDeploymentGroup(ResourceGroup):
    name = "OS::Heat::SoftwareDeploymentGroup"
    description = "Applies a software config to each server of a map."
    member = SoftwareDeployment()
    properties: Mapping[str, Prop] = {
        "servers": Prop(
            "map",
            "Names -> server ids; each name is its deployment's name in the group.",
            required=True,
            update_allowed=True,
        ),
        **{k: v for k, v in SoftwareDeployment.properties.items() if k != "server"},
    }
    attributes: Mapping[str, str] = {
        "deploy_stdouts": "Name -> the captured stdout of each server's deployment.",
        "deploy_stderrs": "Name -> the captured stderr of each server's deployment.",
        "deploy_status_codes": "Name -> the status code of each server's deployment.",
    }

    def validate(self, props: Mapping[str, Any], known: Lookups) -> None:
        servers = props.get("servers")
        if servers is not None and len(servers) > MAX_SERVERS:
            raise InvalidRequest(f"servers: at most {MAX_SERVERS} servers.")
        for key in servers or {}:
            if not key or "." in key or "/" in key:
                raise InvalidRequest(f"servers: {key!r} is not a name a deployment may have.")
        self.member.validate(props, known)

    def _names(self, res: StackResource, size: int) -> list[str]:
        return list(res.properties.get("servers") or {})[:size]

    def _wanted(self, res: StackResource) -> list[Wanted]:
        define = self._define(res)
        names = self._names(res, len(res.properties.get("servers") or {}))
        return [define(n) for n in names]

    def _define(self, res: StackResource) -> rolling.Define:
        props = dict(res.properties)
        servers = dict(props.pop("servers", None) or {})
        for key in ("count", "index_var", "resource_def"):
            props.pop(key, None)

        def define(n: str) -> Wanted:
            return Wanted(n, self.member.name, {**props, "server": servers.get(n)})

        return define


class StructuredDeploymentGroup(SoftwareDeploymentGroup):
    name = "OS::Heat::StructuredDeploymentGroup"
    description = "Applies a structured config to each server of a map."
    member = StructuredDeployment()
    properties: Mapping[str, Prop] = {
        "servers": SoftwareDeploymentGroup.properties["servers"],
        **{k: v for k, v in StructuredDeployment.properties.items() if k != "server"},
    }


class SoftwareDeployments(SoftwareDeploymentGroup):
    name = "OS::Heat::SoftwareDeployments"  # Heat's deprecated name


class StructuredDeployments(StructuredDeploymentGroup):
    name = "OS::Heat::StructuredDeployments"  # Heat's deprecated name


def read(group: StackResource, path: Sequence[Any]) -> Any:
    """`get_attr: [group, name, *path]`: name -> each member's attribute (Heat's rule:
    every name is a member attribute, the three plural ones renamed)."""
    if not path:
        return None
    head = str(path[0])
    each = group_attrs.read(group, ["attributes", _PER_MEMBER.get(head, head)])
    return dig(each, list(path[1:]))
