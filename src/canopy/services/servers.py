"""Server requests: validate, check quota, write intent rows, return. Controllers do the rest."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.config import Settings
from canopy.domain.clock import Clock
from canopy.domain.context import RequestContext
from canopy.domain.errors import Conflict, InvalidRequest, NotFound, QuotaError
from canopy.domain.states import DesiredState, Phase, ServerStatus, TaskState
from canopy.store.db import Database
from canopy.store.events import start_action
from canopy.store.models import Cloud, Flavor, Image, Project, Quota, Server, ServerGroup

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


class ServerService:
    """Create, act on and read servers in one project's scope."""

    def __init__(self, db: Database, settings: Settings, clock: Clock) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock

    # Writes -----------------------------------------------------------------------------

    async def create(self, ctx: RequestContext, req: CreateServer) -> list[Server]:
        _validate_create(req)
        now = self.clock.now()
        async with self.db.session() as s:
            flavor = await _find_flavor(s, req.flavor)
            image = await _find_image(s, req.image) if req.image else None
            if image is None and req.image:
                raise InvalidRequest(f"Image {req.image} could not be found.")
            if req.availability_zone:
                zone = await s.get(Cloud, req.availability_zone)
                if zone is None or not zone.enabled:
                    raise InvalidRequest(
                        f"The requested availability zone is not available: "
                        f"{req.availability_zone!r}"
                    )
            if req.group_id:
                group = await s.get(ServerGroup, req.group_id)
                if group is None or group.project_id != ctx.project_id:
                    raise InvalidRequest(f"Invalid server group {req.group_id}")
            count = await self._check_quota(s, ctx, flavor, req.min_count, req.max_count)
            servers: list[Server] = []
            for i in range(count):
                name = req.name if count == 1 else f"{req.name}-{i + 1}"
                server = Server(
                    id=str(uuid.uuid4()),
                    project_id=ctx.project_id,
                    user_id=ctx.user_id,
                    name=name,
                    flavor_id=flavor.id,
                    image_id=image.id if image else None,
                    key_name=req.key_name,
                    metadata_=dict(req.metadata),
                    requested_zone=req.availability_zone,
                    group_id=req.group_id,
                    hints=dict(req.hints),
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
                s.add(server)
                servers.append(server)
            await s.flush()
            for server in servers:
                start_action(
                    s,
                    server_id=server.id,
                    action="create",
                    project_id=ctx.project_id,
                    user_id=ctx.user_id,
                    request_id=ctx.request_id,
                    now=now,
                )
        return servers

    async def delete(self, ctx: RequestContext, server_id: str) -> None:
        now = self.clock.now()
        async with self.db.session() as s:
            server = await self._get_for_update(s, ctx, server_id)
            if server.desired_state == DesiredState.DELETED:
                return  # already being deleted: deleting twice is not an error
            server.desired_state = DesiredState.DELETED
            server.task_state = TaskState.DELETING
            server.phase = Phase.DELETE
            server.next_attempt_at = None
            server.retries = 0
            server.updated_at = now
            start_action(
                s,
                server_id=server.id,
                action="delete",
                project_id=ctx.project_id,
                user_id=ctx.user_id,
                request_id=ctx.request_id,
                now=now,
            )

    async def stop(self, ctx: RequestContext, server_id: str) -> None:
        await self._power(ctx, server_id, "stop")

    async def start(self, ctx: RequestContext, server_id: str) -> None:
        await self._power(ctx, server_id, "start")

    async def reboot(self, ctx: RequestContext, server_id: str, *, hard: bool = False) -> None:
        await self._power(ctx, server_id, "reboot", hard=hard)

    async def _power(
        self, ctx: RequestContext, server_id: str, action: str, *, hard: bool = False
    ) -> None:
        now = self.clock.now()
        async with self.db.session() as s:
            server = await self._get_for_update(s, ctx, server_id)
            busy = server.task_state is not None or server.phase != Phase.STEADY
            if action == "stop":
                if server.status != ServerStatus.ACTIVE or busy:
                    raise Conflict(
                        f"Cannot 'stop' instance {server.id} while it is in vm_state "
                        f"{_vm_state(server)}"
                    )
                server.desired_state = DesiredState.STOPPED
                server.task_state = TaskState.POWERING_OFF
            elif action == "start":
                if server.status != ServerStatus.SHUTOFF or busy:
                    raise Conflict(
                        f"Cannot 'start' instance {server.id} while it is in vm_state "
                        f"{_vm_state(server)}"
                    )
                server.desired_state = DesiredState.ACTIVE
                server.task_state = TaskState.POWERING_ON
            else:
                if server.status not in (ServerStatus.ACTIVE, ServerStatus.SHUTOFF) or busy:
                    raise Conflict(
                        f"Cannot 'reboot' instance {server.id} while it is in vm_state "
                        f"{_vm_state(server)}"
                    )
                server.desired_state = DesiredState.ACTIVE
                server.reboot_requested += 1
                server.reboot_hard = hard
                server.status = ServerStatus.HARD_REBOOT if hard else ServerStatus.REBOOT
                server.task_state = TaskState.REBOOTING_HARD if hard else TaskState.REBOOTING
            server.phase = Phase.POWER
            server.next_attempt_at = None
            server.retries = 0
            server.updated_at = now
            start_action(
                s,
                server_id=server.id,
                action=action,
                project_id=ctx.project_id,
                user_id=ctx.user_id,
                request_id=ctx.request_id,
                now=now,
            )

    # Reads ------------------------------------------------------------------------------

    async def get(self, ctx: RequestContext, server_id: str) -> Server:
        async with self.db.read() as s:
            server = await s.get(Server, server_id)
            if server is None or not _visible(ctx, server):
                raise NotFound(f"Instance {server_id} could not be found.")
            return server

    async def list(
        self,
        ctx: RequestContext,
        *,
        include_deleted: bool = False,
        changes_since: datetime | None = None,
        all_projects: bool = False,
    ) -> Sequence[Server]:
        async with self.db.read() as s:
            q = select(Server).order_by(Server.created_at.desc(), Server.id.desc())
            if not (all_projects and ctx.is_admin):
                q = q.where(Server.project_id == ctx.project_id)
            if changes_since is not None:
                q = q.where(Server.updated_at >= changes_since)
            elif not include_deleted:
                q = q.where(Server.deleted.is_(False))
            return list((await s.execute(q)).scalars())

    # Helpers ----------------------------------------------------------------------------

    async def _get_for_update(self, s: AsyncSession, ctx: RequestContext, sid: str) -> Server:
        server = (
            await s.execute(select(Server).where(Server.id == sid).with_for_update())
        ).scalar_one_or_none()
        if server is None or server.deleted or not _visible(ctx, server):
            raise NotFound(f"Instance {sid} could not be found.")
        return server

    async def _check_quota(
        self, s: AsyncSession, ctx: RequestContext, flavor: Flavor, min_count: int, max_count: int
    ) -> int:
        """How many of min..max fit in the project's quota; raise QuotaError if min does not."""
        if self.db.is_postgres:
            # Serialise creates per project so two requests cannot both pass the check.
            await s.execute(
                select(Project.id).where(Project.id == ctx.project_id).with_for_update()
            )
        limits = await project_limits(s, self.settings, ctx.project_id)
        used = await project_usage(s, ctx.project_id)
        fit = max_count
        for res, per in (("instances", 1), ("cores", flavor.vcpus), ("ram", flavor.ram_mb)):
            limit = limits[res]
            if limit < 0:
                continue
            room = (limit - used[res]) // per
            if room < min_count:
                raise QuotaError(
                    f"Quota exceeded for {res}: Requested {min_count * per}, but already used "
                    f"{used[res]} of {limit} {res}"
                )
            fit = min(fit, room)
        return max(min_count, fit)


async def project_limits(s: AsyncSession, settings: Settings, project_id: str) -> dict[str, int]:
    limits = settings.quotas.model_dump()
    rows = await s.execute(
        select(Quota.resource, Quota.hard_limit).where(Quota.project_id == project_id)
    )
    for res, lim in rows:
        limits[res] = lim
    return limits


async def project_usage(s: AsyncSession, project_id: str) -> dict[str, int]:
    row = (
        await s.execute(
            select(
                func.count(Server.id),
                func.coalesce(func.sum(Flavor.vcpus), 0),
                func.coalesce(func.sum(Flavor.ram_mb), 0),
            )
            .join(Flavor, Flavor.id == Server.flavor_id)
            .where(Server.project_id == project_id, Server.deleted.is_(False))
        )
    ).one()
    return {"instances": int(row[0]), "cores": int(row[1]), "ram": int(row[2])}


async def _find_flavor(s: AsyncSession, ref: str) -> Flavor:
    flavor = await s.get(Flavor, ref)
    if flavor is None:
        flavor = (await s.execute(select(Flavor).where(Flavor.name == ref))).scalar_one_or_none()
    if flavor is None:
        raise InvalidRequest(f"Flavor {ref} could not be found.")
    return flavor


async def _find_image(s: AsyncSession, ref: str) -> Image | None:
    image = await s.get(Image, ref)
    if image is None:
        matches = list((await s.execute(select(Image).where(Image.name == ref))).scalars())
        if len(matches) > 1:
            raise InvalidRequest(f"More than one image is named {ref}; use its id.")
        image = matches[0] if matches else None
    return image


def _validate_create(req: CreateServer) -> None:
    if not req.name or not req.name.strip():
        raise InvalidRequest("Invalid input for field/attribute name: the name must not be empty.")
    if len(req.name) > MAX_NAME:
        raise InvalidRequest(f"Invalid input for field/attribute name: longer than {MAX_NAME}.")
    if req.min_count < 1 or req.max_count < req.min_count:
        raise InvalidRequest("min_count must be >= 1 and max_count must be >= min_count.")
    if req.max_count > 1000:
        raise InvalidRequest("max_count must be at most 1000.")


def _visible(ctx: RequestContext, server: Server) -> bool:
    return ctx.is_admin or server.project_id == ctx.project_id


def _vm_state(server: Server) -> str:
    return {
        ServerStatus.BUILD: "building",
        ServerStatus.ACTIVE: "active",
        ServerStatus.SHUTOFF: "stopped",
        ServerStatus.ERROR: "error",
        ServerStatus.DELETED: "deleted",
    }.get(ServerStatus(server.status), "active")
