"""Adopting existing resources into a stack (`adopt_stack_data`), type by type.

Heat's adopt makes each resource's `resource_id` from the data its physical id and trusts
it. Canopy checks it against its own rows first: a server must be a live server of the
stack's project that no stack holds, so an adopt can neither take another project's
server (nor tell whether one exists: a server of another project and a missing one fail
alike) nor put one server in two stacks. The local types (Value, None, TestResource,
RandomString) own nothing outside the stack: they take the id, and a RandomString its
value from the data (abandon writes it there, as Heat's does). Any other type is refused
before the stack is written (`adopting.check_adoptable`). Groups and nested stacks adopt
their members and child stacks from these (adopt_tree.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import select

from canopy.domain.states import DesiredState
from canopy.orchestration.resources.base import Progress, Step
from canopy.orchestration.resources.ec2_instance import Ec2Instance
from canopy.orchestration.resources.server import NovaServer
from canopy.orchestration.resources.server_common import ServerBase
from canopy.orchestration.resources.simple import (
    NoneResource,
    RandomString,
    TestResource,
    Value,
    _Local,
)
from canopy.store.models import Server, StackResource

MAX_ID = 255


@dataclass(frozen=True)
class Adopted:
    """One resource's entry in the adopt data, checked for shape."""

    resource_id: str
    data: Mapping[str, Any]


class Adopts(Protocol):
    """A type that can take an existing resource as its own."""

    async def adopt(self, step: Step, res: StackResource, found: Adopted) -> Progress:
        """Make `res` the resource `found` names, or say why it cannot be."""
        ...

    def carried(self, res: StackResource) -> dict[str, Any]:
        """What abandon writes in `resource_data` for a later adopt to read back."""
        ...


class _Server:
    """A server resource adopts a live server of the stack's project that no stack holds."""

    def __init__(self, kind: ServerBase) -> None:
        self.kind = kind

    async def adopt(self, step: Step, res: StackResource, found: Adopted) -> Progress:
        missing = Progress.failure(f"Server {found.resource_id} could not be found.")
        # Locked: two stacks adopting one server at once take turns, and the second sees
        # the first's row below.
        server = (
            await step.session.execute(
                select(Server)
                .where(
                    Server.id == found.resource_id,
                    Server.project_id == step.stack.project_id,
                    Server.deleted.is_(False),
                )
                .with_for_update()
            )
        ).scalar_one_or_none()
        if server is None:
            return missing
        if server.desired_state == DesiredState.DELETED:
            return Progress.failure(f"Server {server.id} is being deleted.")
        held = await step.session.scalar(
            select(StackResource.id).where(StackResource.server_id == server.id).limit(1)
        )
        if held is not None:
            return Progress.failure(f"Server {server.id} already belongs to a stack.")
        res.server_id = server.id
        res.physical_resource_id = server.id
        return await self.kind.check(step, res)  # ACTIVE or SHUTOFF completes it

    def carried(self, res: StackResource) -> dict[str, Any]:
        return {}


class _Plain:
    """A local type: the id is taken as it is, the attributes come from the properties."""

    def __init__(self, kind: _Local) -> None:
        self.kind = kind

    async def adopt(self, step: Step, res: StackResource, found: Adopted) -> Progress:
        res.physical_resource_id = found.resource_id
        res.attributes = self.kind.outputs(res.properties)
        return Progress.complete()

    def carried(self, res: StackResource) -> dict[str, Any]:
        return {}


class _Random:
    """A RandomString keeps its value: it is in the data, as Heat's abandon writes it."""

    async def adopt(self, step: Step, res: StackResource, found: Adopted) -> Progress:
        value = found.data.get("value")
        if not isinstance(value, str) or not value:
            return Progress.failure(
                "The adopt data has no value for this RandomString (resource_data.value)."
            )
        res.physical_resource_id = found.resource_id
        res.attributes = {"value": value}
        return Progress.complete()

    def carried(self, res: StackResource) -> dict[str, Any]:
        value = (res.attributes or {}).get("value")
        return {"value": value} if isinstance(value, str) else {}


ADOPTERS: Mapping[str, Adopts] = {
    NovaServer.name: _Server(NovaServer()),
    Ec2Instance.name: _Server(Ec2Instance()),
    Value.name: _Plain(Value()),
    NoneResource.name: _Plain(NoneResource()),
    TestResource.name: _Plain(TestResource()),
    RandomString.name: _Random(),
}


def entry_of(raw: Any, type_name: str) -> Adopted | str:
    """A resource's entry in the adopt data, or why it cannot be adopted (Heat's message
    when the id is missing)."""
    if not isinstance(raw, Mapping) or raw.get("resource_id") in (None, ""):
        return "Resource ID was not provided."
    rid = raw["resource_id"]
    if not isinstance(rid, str) or len(rid) > MAX_ID:
        return f"resource_id must be a string of at most {MAX_ID} characters."
    given = raw.get("type")
    if given is not None and given != type_name:
        return f"The adopt data's resource is a {str(given)[:255]}, not a {type_name}."
    data = raw.get("resource_data") or {}
    if not isinstance(data, Mapping):
        return "resource_data must be a map."
    return Adopted(rid, data)


async def adopt_leaf(step: Step, res: StackResource, raw: Any) -> Progress:
    """Adopt into `res` (of a type in ADOPTERS) what the adopt data's entry `raw` names."""
    adopter = ADOPTERS.get(res.type)
    if adopter is None:  # refused at the API; a row never gets here
        return Progress.failure(f"Adopting a {res.type} is not supported.")
    found = entry_of(raw, res.type)
    if isinstance(found, str):
        return Progress.failure(found)
    return await adopter.adopt(step, res, found)


def let_go(res: StackResource) -> None:
    """A resource whose adopt failed holds nothing: the server it named stays the project's.

    A server is taken (`server_id` set) before it is checked, so one in ERROR, or one still
    building when the adopt failed elsewhere or timed out, would otherwise be deleted by a
    rollback, a stack delete or an update's replacement, though the adopt never made it
    the stack's. The same holds for a row still adopting when its stack is deleted
    (nesting.all_absent). Heat's adopt sets the id and completes at once, checking
    nothing; canopy's completes only once the server is checked, and until then the
    server is not the stack's (docs/architecture.md)."""
    if res.server_id is not None:
        res.server_id = None
        res.physical_resource_id = ""


def carried(res: StackResource) -> dict[str, Any]:
    """What abandon adds to `res`'s data in its `resource_data`."""
    adopter = ADOPTERS.get(res.type)
    return adopter.carried(res) if adopter is not None else {}
