"""Creating servers: validate the request, check quota, write the intent rows."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.domain.context import RequestContext
from canopy.domain.errors import InvalidRequest
from canopy.domain.states import DesiredState, Phase, ServerStatus, TaskState
from canopy.reservations import host_use
from canopy.reservations.using import check_boot
from canopy.services import flavors as flavor_lookup
from canopy.services import images as image_service
from canopy.services import quotas
from canopy.services.server_input import check_metadata_keys, check_scheduler_hints
from canopy.services.server_scope import ServerScope
from canopy.store.events import start_actions
from canopy.store.models import Cloud, Flavor, Image, Server, ServerGroup, ServerTag, ServerUserData

MAX_NAME = 255


@dataclass(frozen=True, slots=True)
class CreateServer:
    """A request to create `min_count`..`max_count` servers."""

    name: str
    flavor: str  # id or name
    image: str | None  # id or name
    availability_zone: str | None = None
    group_id: str | None = None
    key_name: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    min_count: int = 1
    max_count: int = 1
    hints: dict[str, Any] = field(default_factory=dict)
    description: str | None = None
    tags: tuple[str, ...] = ()
    user_data: str | None = None
    config_drive: bool = False
    # The image came from a block device mapping to a volume (Nova then shows image "").
    boot_from_volume: bool = False


class Found:
    """What a create looks up by reference (flavor, image, zone, server group), kept for
    the requests of one transaction: a batch of creates reads each reference once."""

    def __init__(self, s: AsyncSession, ctx: RequestContext) -> None:
        self.s = s
        self.ctx = ctx
        self._flavors: dict[str, Flavor] = {}
        self._images: dict[str, Image] = {}
        self._zones: dict[str, bool] = {}
        self._groups: dict[str, bool] = {}

    async def check(self, req: CreateServer) -> tuple[Flavor, Image | None]:
        """The request's flavor and image; InvalidRequest for what does not exist (or is
        not the caller's), before anything is written."""
        flavor = self._flavors.get(req.flavor)
        if flavor is None:
            flavor = self._flavors[req.flavor] = await flavor_lookup.bootable(
                self.s, req.flavor, self.ctx
            )
        image = None
        if req.image:
            image = self._images.get(req.image)
            if image is None:
                image = await image_service.find(self.s, self.ctx, req.image)
                if image is None:
                    raise InvalidRequest(f"Image {req.image} could not be found.")
                self._images[req.image] = image
        zone = req.availability_zone
        if zone:
            if zone not in self._zones:
                cloud = await self.s.get(Cloud, zone)
                self._zones[zone] = cloud is not None and cloud.enabled
            if not self._zones[zone]:
                raise InvalidRequest(f"The requested availability zone is not available: {zone!r}")
        gid = req.group_id
        if gid:
            if gid not in self._groups:
                group = await self.s.get(ServerGroup, gid)
                self._groups[gid] = group is not None and group.project_id == self.ctx.project_id
            if not self._groups[gid]:
                raise InvalidRequest(f"Invalid server group {gid}")
        return flavor, image


class ServerCreation(ServerScope):
    """ServerService's create."""

    async def create(
        self,
        ctx: RequestContext,
        req: CreateServer,
        *,
        session: AsyncSession | None = None,
        lease_boot: bool = False,
        found: Found | None = None,
    ) -> list[Server]:
        """Validate and write the servers' rows (`lease_boot`: the lease controller's boot
        of the servers a lease carries, ahead of its start: its PENDING lease is allowed)."""
        _validate_create(req)
        now = self.clock.now()
        async with self._unit(session) as s:
            flavor, image = await (found or Found(s, ctx)).check(req)
            max_count = req.max_count
            reservation_id = host_use.hinted(req.hints)
            if reservation_id is not None:  # a host reservation: within its hosts' room
                max_count = await host_use.check_hint(
                    s,
                    reservation_id,
                    ctx.project_id,
                    flavor,
                    min_count=req.min_count,
                    max_count=max_count,
                )
            elif not flavor.is_public:  # a reservation's flavor: within what it holds
                room = await check_boot(
                    s,
                    flavor.id,
                    ctx.project_id,
                    min_count=req.min_count,
                    max_count=max_count,
                    early=lease_boot,
                )
                max_count = max_count if room is None else room
            count = await quotas.check_create(
                s,
                self.settings,
                ctx.project_id,
                flavor,
                min_count=req.min_count,
                max_count=max_count,
                metadata_items=len(req.metadata),
                group_id=req.group_id,
            )
            servers = server_rows(ctx, req, flavor, image, reservation_id, count, now)
            await write_servers(s, ctx, [(req, servers)], now)
        return servers


def server_rows(
    ctx: RequestContext,
    req: CreateServer,
    flavor: Flavor,
    image: Image | None,
    reservation_id: str | None,
    count: int,
    now: datetime,
    *,
    first_id: str | None = None,
) -> list[Server]:
    """The rows of `count` new servers for `req` (not yet added to a session); the first
    one's id is `first_id` when given."""
    servers: list[Server] = []
    for i in range(count):
        servers.append(
            Server(
                id=first_id if i == 0 and first_id is not None else str(uuid.uuid4()),
                project_id=ctx.project_id,
                user_id=ctx.user_id,
                name=req.name if count == 1 else f"{req.name}-{i + 1}",
                flavor_id=flavor.id,
                image_id=image.id if image else None,
                key_name=req.key_name,
                metadata_=dict(req.metadata),
                requested_zone=req.availability_zone,
                group_id=req.group_id,
                hints=dict(req.hints),
                reservation_id=reservation_id,
                description=req.description,
                locked=False,
                config_drive=req.config_drive,
                boot_from_volume=req.boot_from_volume,
                launch_index=i,
                desired_state=DesiredState.ACTIVE,
                status=ServerStatus.BUILD,
                task_state=TaskState.SCHEDULING,
                phase=Phase.SCHEDULE,
                attempts=0,
                attempt_log=[],
                addresses={},
                reboot_requested=0,
                reboot_done=0,
                retries=0,
                created_at=now,
                updated_at=now,
                deleted=False,
            )
        )
    return servers


async def write_servers(
    s: AsyncSession,
    ctx: RequestContext,
    made: Sequence[tuple[CreateServer, list[Server]]],
    now: datetime,
) -> None:
    """Write new servers with their tags, user data and create actions: one INSERT per
    table however many requests `made` holds."""
    servers = [sv for _, group in made for sv in group]
    s.add_all(servers)
    try:
        await s.flush()
    except IntegrityError as e:
        vanished = _vanished_flavor(e, made)
        if vanished is None:
            raise
        raise vanished from None
    tags = [
        {"server_id": sv.id, "tag": t}
        for req, group in made
        for t in sorted(set(validate_tags(req.tags)))
        for sv in group
    ]
    if tags:
        await s.execute(insert(ServerTag), tags)
    data = [
        {"server_id": sv.id, "data": req.user_data}
        for req, group in made
        if req.user_data is not None
        for sv in group
    ]
    if data:
        await s.execute(insert(ServerUserData), data)
    await start_actions(
        s,
        [sv.id for sv in servers],
        action="create",
        project_id=ctx.project_id,
        user_id=ctx.user_id,
        request_id=ctx.request_id,
        now=now,
    )


_FLAVOR_KEY = re.compile(r"Key \(flavor_id\)=\((.*?)\) is not present")


def _vanished_flavor(
    e: IntegrityError, made: Sequence[tuple[CreateServer, list[Server]]]
) -> InvalidRequest | None:
    """A server row naming a flavor deleted since it was read: Nova's 400 for the flavor
    the request named (`bootable` locks the row, so this is the last line of defence)."""
    text = str(e.orig)
    if "flavor_id" not in text:
        return None
    key = _FLAVOR_KEY.search(text)
    for req, group in made:
        if group and (key is None or group[0].flavor_id == key.group(1)):
            return InvalidRequest(f"Flavor {req.flavor} could not be found.")
    return None


def _validate_name(name: str) -> None:
    if not name or not name.strip():
        raise InvalidRequest("Invalid input for field/attribute name: the name must not be empty.")
    if len(name) > MAX_NAME:
        raise InvalidRequest(f"Invalid input for field/attribute name: longer than {MAX_NAME}.")


MAX_TAGS = 50
MAX_TAG = 60


def validate_tags(tags: Sequence[str]) -> tuple[str, ...]:
    """Nova's tag rules: 1..60 characters, no '/' or ',', at most 50; duplicates dropped."""
    out: list[str] = []
    for t in tags:
        bad = not isinstance(t, str) or not t or len(t) > MAX_TAG
        if bad or "/" in t or "," in t or "\x00" in t:
            raise InvalidRequest(
                f"Invalid input for field/attribute tags. Value: {t!r}. A tag is 1 to "
                f"{MAX_TAG} characters and contains neither '/' nor ','."
            )
        if t not in out:
            out.append(t)
    if len(out) > MAX_TAGS:
        raise InvalidRequest(f"The number of tags exceeded the per-server limit {MAX_TAGS}")
    return tuple(out)


def _validate_create(req: CreateServer) -> None:
    _validate_name(req.name)
    validate_tags(req.tags)
    check_scheduler_hints(req.hints)
    host_use.hinted(req.hints)
    check_metadata_keys(req.metadata)
    if req.description is not None and len(req.description) > MAX_NAME:
        raise InvalidRequest(
            f"Invalid input for field/attribute description: longer than {MAX_NAME}."
        )
    if req.min_count < 1 or req.max_count < req.min_count:
        raise InvalidRequest("min_count must be >= 1 and max_count must be >= min_count.")
    if req.max_count > 1000:
        raise InvalidRequest("max_count must be at most 1000.")
