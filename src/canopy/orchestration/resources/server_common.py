"""What every server-like resource type shares (OS::Nova::Server, AWS::EC2::Instance).

A server resource is a canopy server, created and deleted through the service layer, so
the scheduler places it like any server (bursting, zones, groups, the explanation), quotas
and claims apply, and the provisioning, sync and power controllers do the cloud calls. The
resource waits on the server row: ACTIVE completes it, ERROR fails it with the server's
fault. A type says how its properties become a `CreateServer` (`request`) and what its
attributes are (`shown`); the steps are the same for all.
"""

from __future__ import annotations

import base64
import json
import uuid
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import select

from canopy.domain.errors import CanopyError, InvalidRequest, NotFound
from canopy.domain.states import ServerStatus
from canopy.orchestration.resources.base import Lookups, Progress, Prop, Step, updatable
from canopy.services.server_create import CreateServer, validate_tags
from canopy.store.models import Placement, Server, StackResource

MAX_USER_DATA = 65535


class ServerBase(ABC):
    """The steps of a server resource; subclasses give the schema, `request` and `shown`."""

    name = ""
    description = ""
    open_properties = False
    properties: Mapping[str, Prop] = {}
    attributes: Mapping[str, str] = {}
    # The names of the properties holding the flavor, image, keypair, zone, user data and
    # metadata.
    keys: Mapping[str, str] = {}
    # `check` writes nothing but its own row's attributes, and only once it has read all
    # it needs: no savepoint around it (orchestration/step_errors.py).
    check_writes_its_row_only = True

    def reference(self, res: StackResource) -> Any:
        return res.physical_resource_id or None

    def validate(self, props: Mapping[str, Any], known: Lookups) -> None:
        k = self.keys
        flavor, image = props.get(k["flavor"]), props.get(k["image"])
        if flavor is not None and flavor not in known.flavors:
            raise InvalidRequest(f"Error validating value '{flavor}': No Flavor matching {flavor}.")
        if image is not None and image not in known.images:
            raise InvalidRequest(f"Error validating value '{image}': No Image matching {image}.")
        key = props.get(k["key_name"])
        if key is not None and key not in known.keypairs:
            raise InvalidRequest(
                f"Error validating value '{key}': The Key ({key}) could not be found."
            )
        zone = props.get(k["zone"])
        if zone not in (None, "", "nova") and zone not in known.zones:
            raise InvalidRequest(
                f"The requested availability zone is not available: {zone!r}. Canopy's zones "
                f"are its clouds: {', '.join(sorted(known.zones))}."
            )
        check_user_data(props.get(k["user_data"]))

    def in_place(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
        return updatable(self.properties, old, new)

    @abstractmethod
    async def request(self, step: Step, res: StackResource) -> CreateServer:
        """The server to create for `res` (InvalidRequest: the resource fails)."""

    def server_metadata(self, props: Mapping[str, Any]) -> dict[str, str]:
        """The server metadata the properties ask for (InvalidRequest: not that shape)."""
        return metadata(props.get(self.keys["metadata"]))

    def shown(self, common: dict[str, Any]) -> dict[str, Any]:
        """The type's attributes from the common ones (`server_attributes`)."""
        return common

    def new_name(self, step: Step, res: StackResource) -> str:
        return f"{step.stack.name}-{res.name}-{res.id[:8]}"

    async def create(self, step: Step, res: StackResource) -> Progress:
        [progress] = await self.create_many(step, [res])
        return progress

    async def create_many(
        self,
        step: Step,
        rows: Sequence[StackResource],
        before: Callable[[], Awaitable[None]] | None = None,
    ) -> list[Progress]:
        """Start the servers of `rows` with one create of them all (`create_each`): a
        refused one fails its resource alone and leaves nothing of itself. Each row to
        create names its server's id first; `before` is called once then, before any
        server is written (the walk writes its new rows there, with those ids)."""
        out: list[Progress] = [Progress()] * len(rows)  # created by an earlier step: wait
        asks: list[tuple[int, CreateServer]] = []
        for i, res in enumerate(rows):
            if res.server_id is not None:
                continue
            try:
                asks.append((i, await self.request(step, res)))
            except CanopyError as e:
                out[i] = Progress.failure(f"{type(e).__name__}: {e}")
        ids = [str(uuid.uuid4()) for _ in asks]
        for (i, _), sid in zip(asks, ids, strict=True):
            rows[i].server_id = sid
            rows[i].physical_resource_id = sid
        if before is not None:
            await before()
        if not asks:
            return out
        await step.session.flush()  # the rows' ids, outside any savepoint of create_each
        made = await step.servers.create_each(
            step.ctx, [req for _, req in asks], session=step.session, ids=ids
        )
        for (i, _), result in zip(asks, made, strict=True):
            if isinstance(result, CanopyError):
                rows[i].server_id = None  # no server was written for it
                rows[i].physical_resource_id = ""
                out[i] = Progress.failure(f"{type(result).__name__}: {result}")
                continue
            [server] = result
            if server.id != rows[i].server_id:  # a reservation's: the single create's id
                rows[i].server_id = server.id
                rows[i].physical_resource_id = server.id
        return out

    async def rename(
        self, step: Step, res: StackResource, new: Mapping[str, Any]
    ) -> Progress | None:
        """Rename the server if its name is new; a Progress only when that failed."""
        name = new.get("name")
        if res.server_id is None or not name or name == res.properties.get("name"):
            return None
        step.going.discard(res.server_id)  # changed in this step: read it again
        try:
            await step.servers.update(step.ctx, res.server_id, name=name, session=step.session)
        except CanopyError as e:
            return Progress.failure(f"{type(e).__name__}: {e}")
        return None

    async def set_metadata(
        self, step: Step, res: StackResource, new: Mapping[str, Any]
    ) -> Progress | None:
        """Replace the server's metadata if its property changed (Nova's rules: a server
        building, locked or being deleted refuses it, and the resource fails)."""
        key = self.keys["metadata"]
        if res.server_id is None or new.get(key) == res.properties.get(key):
            return None
        step.going.discard(res.server_id)
        try:
            await step.servers.set_metadata(
                step.ctx,
                res.server_id,
                self.server_metadata(new),
                replace=True,
                session=step.session,
            )
        except CanopyError as e:
            return Progress.failure(f"{type(e).__name__}: {e}")
        return None

    async def set_tags(
        self, step: Step, res: StackResource, new: Mapping[str, Any]
    ) -> Progress | None:
        """Replace the server's tags if they changed."""
        if res.server_id is None or new.get("tags") == res.properties.get("tags"):
            return None
        step.going.discard(res.server_id)
        try:
            tags = tags_of(new.get("tags"))
            await step.servers.set_tags(step.ctx, res.server_id, tags, session=step.session)
        except CanopyError as e:
            return Progress.failure(f"{type(e).__name__}: {e}")
        return None

    async def update(self, step: Step, res: StackResource, new: dict[str, Any]) -> Progress:
        res.properties = new
        return await self.check(step, res)

    async def delete(self, step: Step, res: StackResource) -> Progress:
        if res.server_id is None:
            return Progress.complete()
        step.going.discard(res.server_id)  # changed in this step: read it again
        try:
            await step.servers.delete(step.ctx, res.server_id, session=step.session)
        except NotFound:
            return Progress.complete()
        return await self.check(step, res)

    async def check(self, step: Step, res: StackResource) -> Progress:
        if res.server_id is None:
            return Progress.complete() if res.action == "DELETE" else Progress()
        if res.server_id in step.going:
            return Progress()  # still going when the step began (prefetch.py)
        server = await step.session.get(Server, res.server_id)
        if res.action == "DELETE":
            return Progress.complete() if server is None or server.deleted else Progress()
        if server is None or server.deleted:
            return Progress.failure(f"Server {res.server_id} was deleted outside the stack.")
        if server.status == ServerStatus.ERROR:
            why = server.fault_message or "the server went to ERROR"
            return Progress.failure(f'ResourceInError: Went to status ERROR due to "{why}"')
        if server.status in (ServerStatus.ACTIVE, ServerStatus.SHUTOFF):
            res.attributes = self.shown(await server_attributes(step, server))
            return Progress.complete()
        return Progress()


def check_user_data(data: str | None) -> None:
    if data is not None and len(base64.b64encode(data.encode())) > MAX_USER_DATA:
        raise InvalidRequest(f"user_data is longer than Nova's {MAX_USER_DATA} bytes (base64).")


def metadata(raw: Any) -> dict[str, str]:
    """Server metadata from a map (non-string values as JSON, as Heat sends them)."""
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in (raw or {}).items()}


def tags_of(raw: Any) -> tuple[str, ...]:
    """A tags property as the server service takes them (InvalidRequest: not strings)."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(t, str) for t in raw):
        raise InvalidRequest(f"Property tags: {raw!r} is not a list of strings.")
    return validate_tags(raw)


def encode(text: str | None) -> str | None:
    """User data as the server service takes it (base64), checked for size."""
    check_user_data(text)
    return None if text is None else base64.b64encode(text.encode()).decode()


def zone_of(raw: str | None) -> str | None:
    """A zone property: '' and Nova's default 'nova' leave the choice to the scheduler."""
    return None if raw in (None, "", "nova") else raw


async def server_attributes(step: Step, server: Server) -> dict[str, Any]:
    """What get_attr reads of a server (Nova's names), recorded when it completes."""
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
    why = step.reasons.get(server.id)
    if why is None:
        why = (
            await step.session.scalar(
                select(Placement.reason)
                .where(Placement.server_id == server.id)
                .order_by(Placement.id.desc())
                .limit(1)
            )
        ) or ""
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
