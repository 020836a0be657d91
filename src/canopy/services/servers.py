"""Server requests: validate, check quota, write intent rows, return. Controllers do the rest."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    String,
    and_,
    bindparam,
    func,
    insert,
    literal,
    or_,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.config import Settings
from canopy.domain.clock import Clock
from canopy.domain.context import RequestContext
from canopy.domain.errors import Conflict, InvalidRequest, NotFound
from canopy.domain.states import DesiredState, Phase, ServerStatus, TaskState
from canopy.services import quotas, regex
from canopy.services.server_input import check_metadata_keys, check_scheduler_hints
from canopy.store.db import Database
from canopy.store.events import start_action
from canopy.store.models import (
    Cloud,
    Flavor,
    Image,
    InstanceAction,
    Server,
    ServerGroup,
    ServerTag,
    ServerUserData,
)
from canopy.store.server_extras import replace_tags, tagged, tagged_any, tags_of

MAX_NAME = 255
MAX_ID = 64

_Conditions = list[ColumnElement[bool]]


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


@dataclass(frozen=True, slots=True)
class ServerQuery:
    """One page of a server list: filters, order and keyset pagination, all in SQL.

    `deleted`: False = live servers only, True = deleted only, None = both.
    `sort`: (key, descending) pairs over SORT_KEYS; the id breaks ties last.
    """

    all_projects: bool = False
    project_id: str | None = None  # with all_projects: only this project
    user_id: str | None = None
    name: str | None = None  # a regular expression (re.search)
    statuses: frozenset[str] | None = None
    deleted: bool | None = False
    changes_since: datetime | None = None
    changes_before: datetime | None = None
    image_id: str | None = None
    flavor_id: str | None = None
    cloud: str | None = None
    key_name: str | None = None
    task_state: str | None = None
    request_id: str | None = None  # servers created by this request (reservation id)
    tags: tuple[str, ...] = ()  # every one of these
    tags_any: tuple[str, ...] = ()  # at least one
    not_tags: tuple[str, ...] = ()  # not all of these
    not_tags_any: tuple[str, ...] = ()  # none of these
    locked: bool | None = None
    ip: str | None = None  # a regular expression over the IPv4 addresses
    ip6: str | None = None  # ... and over the IPv6 ones
    sort: tuple[tuple[str, bool], ...] = (("created_at", True),)
    limit: int | None = None
    marker: str | None = None


class ServerService:
    """Create, act on and read servers in one project's scope."""

    def __init__(self, db: Database, settings: Settings, clock: Clock) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self._tag_params = 0  # unique bind names for tag filters

    @asynccontextmanager
    async def _unit(
        self, session: AsyncSession | None, *, write: bool = True
    ) -> AsyncIterator[AsyncSession]:
        """The caller's transaction (an API request's), or a new one of our own."""
        if session is not None:
            yield session
            return
        if write:
            async with self.db.session() as s:
                yield s
        else:
            async with self.db.read() as s:
                yield s

    # Writes -----------------------------------------------------------------------------

    async def create(
        self, ctx: RequestContext, req: CreateServer, *, session: AsyncSession | None = None
    ) -> list[Server]:
        _validate_create(req)
        now = self.clock.now()
        async with self._unit(session) as s:
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
            count = await quotas.check_create(
                s,
                self.settings,
                ctx.project_id,
                flavor,
                min_count=req.min_count,
                max_count=req.max_count,
                metadata_items=len(req.metadata),
                group_id=req.group_id,
            )
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
                s.add(server)
                servers.append(server)
            await s.flush()
            tags = sorted(set(_validate_tags(req.tags)))
            if tags:
                await s.execute(
                    insert(ServerTag),
                    [{"server_id": sv.id, "tag": t} for sv in servers for t in tags],
                )
            if req.user_data is not None:
                await s.execute(
                    insert(ServerUserData),
                    [{"server_id": sv.id, "data": req.user_data} for sv in servers],
                )
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

    async def update(
        self,
        ctx: RequestContext,
        server_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        set_description: bool = False,
        session: AsyncSession | None = None,
    ) -> Server:
        """Rename a server and/or set its description (canopy's record only)."""
        if name is not None:
            _validate_name(name)
        if description is not None and len(description) > MAX_NAME:
            raise InvalidRequest(
                f"Invalid input for field/attribute description: longer than {MAX_NAME}."
            )
        async with self._unit(session) as s:
            server = await self._get_for_update(s, ctx, server_id)
            if name is not None:
                server.name = name
            if set_description:
                server.description = description
            server.updated_at = self.clock.now()
            return server

    async def set_tags(
        self,
        ctx: RequestContext,
        server_id: str,
        tags: Sequence[str],
        *,
        session: AsyncSession | None = None,
    ) -> list[str]:
        """Replace a server's tags (Nova's os-server-tags); return them, sorted."""
        clean = _validate_tags(tags)
        async with self._unit(session) as s:
            server = await self._get_for_update(s, ctx, server_id)
            server.updated_at = self.clock.now()
            return await replace_tags(s, server.id, clean)

    async def tags(
        self, ctx: RequestContext, server_id: str, *, session: AsyncSession | None = None
    ) -> list[str]:
        """A live server's tags, sorted."""
        async with self._unit(session, write=False) as s:
            server = await self.get(ctx, server_id, include_deleted=False, session=s)
            return (await tags_of(s, [server.id])).get(server.id, [])

    async def delete(
        self, ctx: RequestContext, server_id: str, *, session: AsyncSession | None = None
    ) -> None:
        now = self.clock.now()
        async with self._unit(session) as s:
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

    async def stop(
        self, ctx: RequestContext, server_id: str, *, session: AsyncSession | None = None
    ) -> None:
        await self._power(ctx, server_id, "stop", session=session)

    async def start(
        self, ctx: RequestContext, server_id: str, *, session: AsyncSession | None = None
    ) -> None:
        await self._power(ctx, server_id, "start", session=session)

    async def reboot(
        self,
        ctx: RequestContext,
        server_id: str,
        *,
        hard: bool = False,
        session: AsyncSession | None = None,
    ) -> None:
        await self._power(ctx, server_id, "reboot", hard=hard, session=session)

    async def _power(
        self,
        ctx: RequestContext,
        server_id: str,
        action: str,
        *,
        hard: bool = False,
        session: AsyncSession | None = None,
    ) -> None:
        now = self.clock.now()
        async with self._unit(session) as s:
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

    async def get(
        self,
        ctx: RequestContext,
        server_id: str,
        *,
        include_deleted: bool = True,
        session: AsyncSession | None = None,
    ) -> Server:
        """One server the caller may see; a deleted one only with `include_deleted`."""
        async with self._unit(session, write=False) as s:
            server = await s.get(Server, server_id) if _could_be_id(server_id) else None
            if (
                server is None
                or not _visible(ctx, server)
                or (server.deleted and not include_deleted)
            ):
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
        deleted: bool | None = None if (include_deleted or changes_since) else False
        return await self.search(
            ctx,
            ServerQuery(all_projects=all_projects, deleted=deleted, changes_since=changes_since),
        )

    async def search(
        self, ctx: RequestContext, query: ServerQuery, *, session: AsyncSession | None = None
    ) -> Sequence[Server]:
        """One page of servers (up to `query.limit`), in one indexed query.

        Raises InvalidRequest for a bad name pattern or an unknown marker.
        """
        if query.limit is not None and query.limit <= 0:
            return []
        async with self._unit(session, write=False) as s:
            q = select(Server)
            for cond in self._conditions(ctx, query):
                q = q.where(cond)
            keys = _sort_columns(query.sort)
            if query.marker is not None:
                q = q.where(await self._after_marker(s, ctx, query, keys))
            q = q.order_by(*(col.desc() if desc else col.asc() for col, desc in keys))
            if query.limit is not None:
                q = q.limit(query.limit)
            patterns = (query.name, query.ip, query.ip6)
            timeout = self.settings.api.regex_timeout_seconds
            bounded = timeout if any(p is not None for p in patterns) else None
            return list((await regex.execute(s, q, bounded)).scalars())

    def _conditions(self, ctx: RequestContext, query: ServerQuery) -> Sequence[ColumnElement[bool]]:
        conds: _Conditions = []
        if query.all_projects and ctx.is_cloud_admin:
            if query.project_id is not None:
                conds.append(Server.project_id == query.project_id)
        else:
            conds.append(Server.project_id == ctx.project_id)
        if query.deleted is not None:
            conds.append(Server.deleted.is_(query.deleted))
        if query.changes_since is not None:
            conds.append(Server.updated_at >= query.changes_since)
        if query.changes_before is not None:
            conds.append(Server.updated_at <= query.changes_before)
        if query.user_id is not None:
            conds.append(Server.user_id == query.user_id)
        if query.name is not None:
            conds.append(Server.name.regexp_match(regex.portable("name", query.name)))
        if query.statuses is not None:
            conds.append(Server.status.in_(sorted(query.statuses)))
        for col, value in (
            (Server.image_id, query.image_id),
            (Server.flavor_id, query.flavor_id),
            (Server.cloud, query.cloud),
            (Server.key_name, query.key_name),
            (Server.task_state, query.task_state),
        ):
            if value is not None:
                conds.append(col == value)
        if query.request_id is not None:
            conds.append(
                Server.id.in_(
                    select(InstanceAction.server_id).where(
                        InstanceAction.action == "create",
                        InstanceAction.request_id == query.request_id,
                    )
                )
            )
        if query.locked is not None:
            conds.append(Server.locked.is_(query.locked))
        for pattern, version in ((query.ip, 4), (query.ip6, 6)):
            if pattern is not None:
                field = "ip6" if version == 6 else "ip"
                conds.append(self._has_address(regex.portable(field, pattern), version))
        if query.tags:
            conds.extend(tagged(t) for t in query.tags)
        if query.tags_any:
            conds.append(tagged_any(query.tags_any))
        if query.not_tags:  # not all of them: at least one missing
            conds.append(or_(*(~tagged(t) for t in query.not_tags)))
        if query.not_tags_any:  # none of them
            conds.append(~tagged_any(query.not_tags_any))
        return conds

    def _has_address(self, pattern: str, version: int) -> ColumnElement[bool]:
        """An address of this IP version matches `pattern` (addresses are JSON:
        {network: [{"addr": ..., "version": 4|6}, ...]})."""
        self._tag_params += 1
        name = f"ip_{self._tag_params}"
        if self.db.is_postgres:
            sql = (
                "EXISTS (SELECT 1 FROM json_each(servers.addresses) AS n, "
                "json_array_elements(n.value) AS a WHERE a.value ->> 'addr' ~ "
                f":{name} AND a.value ->> 'version' = '{version}')"
            )
        else:
            sql = (
                "EXISTS (SELECT 1 FROM json_each(servers.addresses) AS n, json_each(n.value) "
                f"AS a WHERE json_extract(a.value, '$.addr') REGEXP :{name} "
                f"AND json_extract(a.value, '$.version') = {version})"
            )
        clause = text(sql).bindparams(bindparam(name, pattern, type_=String))
        return clause.self_group()  # type: ignore[return-value]

    async def _after_marker(
        self,
        s: AsyncSession,
        ctx: RequestContext,
        query: ServerQuery,
        keys: Sequence[tuple[Any, bool]],
    ) -> ColumnElement[bool]:
        """Rows strictly after the marker server in the page order."""
        marker = query.marker
        assert marker is not None
        row = None
        if _could_be_id(marker):
            q = select(Server.project_id, *(col for col, _ in keys)).where(Server.id == marker)
            row = (await s.execute(q)).one_or_none()
        if row is None or not (
            (ctx.is_cloud_admin and query.all_projects) or row[0] == ctx.project_id
        ):
            raise InvalidRequest(f"marker [{marker}] not found")
        values = list(row[1:])
        ors: list[ColumnElement[bool]] = []
        for i, (col, desc) in enumerate(keys):
            equal = [keys[j][0] == values[j] for j in range(i)]
            beyond = col < values[i] if desc else col > values[i]
            ors.append(and_(*equal, beyond))
        return or_(*ors)

    # Helpers ----------------------------------------------------------------------------

    async def _get_for_update(self, s: AsyncSession, ctx: RequestContext, sid: str) -> Server:
        server = (
            await s.execute(select(Server).where(Server.id == sid).with_for_update())
        ).scalar_one_or_none()
        if server is None or server.deleted or not _visible(ctx, server):
            raise NotFound(f"Instance {sid} could not be found.")
        return server


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


def _validate_name(name: str) -> None:
    if not name or not name.strip():
        raise InvalidRequest("Invalid input for field/attribute name: the name must not be empty.")
    if len(name) > MAX_NAME:
        raise InvalidRequest(f"Invalid input for field/attribute name: longer than {MAX_NAME}.")


MAX_TAGS = 50
MAX_TAG = 60


def _validate_tags(tags: Sequence[str]) -> tuple[str, ...]:
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
    _validate_tags(req.tags)
    check_scheduler_hints(req.hints)
    check_metadata_keys(req.metadata)
    if req.description is not None and len(req.description) > MAX_NAME:
        raise InvalidRequest(
            f"Invalid input for field/attribute description: longer than {MAX_NAME}."
        )
    if req.min_count < 1 or req.max_count < req.min_count:
        raise InvalidRequest("min_count must be >= 1 and max_count must be >= min_count.")
    if req.max_count > 1000:
        raise InvalidRequest("max_count must be at most 1000.")


# Sort keys a server list may be ordered by, each a non-null SQL expression so keyset
# pagination can compare it. The id always ends the order, as the tie-breaker.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SORT_KEYS: dict[str, Any] = {
    "created_at": Server.created_at,
    "updated_at": Server.updated_at,
    "name": Server.name,
    "id": Server.id,
    "project_id": Server.project_id,
    "user_id": Server.user_id,
    "status": Server.status,
    "key_name": func.coalesce(Server.key_name, ""),
    "task_state": func.coalesce(Server.task_state, ""),
    "observed_state": func.coalesce(Server.observed_state, ""),
    "cloud": func.coalesce(Server.cloud, ""),
    "zone": func.coalesce(Server.cloud, Server.requested_zone, ""),
    "image_id": func.coalesce(Server.image_id, ""),
    "flavor_id": Server.flavor_id,
    "launched_at": func.coalesce(Server.launched_at, literal(_EPOCH, Server.launched_at.type)),
    "terminated_at": func.coalesce(
        Server.terminated_at, literal(_EPOCH, Server.terminated_at.type)
    ),
}


def _sort_columns(sort: Sequence[tuple[str, bool]]) -> list[tuple[Any, bool]]:
    keys: list[tuple[Any, bool]] = []
    seen: set[str] = set()
    for key, desc in sort:
        if key in SORT_KEYS and key not in seen:
            seen.add(key)
            keys.append((SORT_KEYS[key], desc))
    if "id" not in seen:
        keys.append((Server.id, keys[-1][1] if keys else True))
    return keys


def _could_be_id(value: str) -> bool:
    return 0 < len(value) <= MAX_ID and "\x00" not in value


def _visible(ctx: RequestContext, server: Server) -> bool:
    return ctx.is_cloud_admin or server.project_id == ctx.project_id


def _vm_state(server: Server) -> str:
    return {
        ServerStatus.BUILD: "building",
        ServerStatus.ACTIVE: "active",
        ServerStatus.SHUTOFF: "stopped",
        ServerStatus.ERROR: "error",
        ServerStatus.DELETED: "deleted",
    }.get(ServerStatus(server.status), "active")
