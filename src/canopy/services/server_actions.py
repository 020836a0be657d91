"""Acting on one server: rename, describe, tag, delete, stop, start, reboot. Each records
the desired state and an instance action; the controllers do the rest."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from canopy.domain.context import RequestContext
from canopy.domain.errors import Conflict, InvalidRequest
from canopy.domain.states import DesiredState, Phase, ServerStatus, TaskState
from canopy.notifications.outbox import server_updated
from canopy.services.abilities import require_for_action
from canopy.services.server_create import MAX_NAME, _validate_name, validate_tags
from canopy.services.server_scope import ServerScope
from canopy.store.events import start_action
from canopy.store.models import Server
from canopy.store.server_extras import replace_tags, tags_of


class ServerActions(ServerScope):
    """ServerService's writes to existing servers."""

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
        """Rename a server and/or set its description (canopy's record only); announced
        as `compute.instance.update`."""
        if name is not None:
            _validate_name(name)
        if description is not None and len(description) > MAX_NAME:
            raise InvalidRequest(
                f"Invalid input for field/attribute description: longer than {MAX_NAME}."
            )
        async with self._unit(session) as s:
            server = await self._get_for_update(s, ctx, server_id)
            old_name = server.name
            if name is not None:
                server.name = name
            if set_description:
                server.description = description
            server.updated_at = self.clock.now()
            await server_updated(s, server, server.updated_at, old_name=old_name)
            return server

    async def set_tags(
        self,
        ctx: RequestContext,
        server_id: str,
        tags: Sequence[str],
        *,
        session: AsyncSession | None = None,
    ) -> list[str]:
        """Replace a server's tags (Nova's os-server-tags); return them, sorted. Announced
        as `compute.instance.update`."""
        clean = validate_tags(tags)
        async with self._unit(session) as s:
            server = await self._get_for_update(s, ctx, server_id)
            server.updated_at = self.clock.now()
            after = await replace_tags(s, server.id, clean)
            await server_updated(s, server, server.updated_at, tags=after)
            return after

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
            await require_for_action(s, server, action)
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


def _vm_state(server: Server) -> str:
    return {
        ServerStatus.BUILD: "building",
        ServerStatus.ACTIVE: "active",
        ServerStatus.SHUTOFF: "stopped",
        ServerStatus.ERROR: "error",
        ServerStatus.DELETED: "deleted",
    }.get(ServerStatus(server.status), "active")
