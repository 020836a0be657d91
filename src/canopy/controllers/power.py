"""Power: stop, start, reboot and delete, each an idempotent step against the cloud."""

from __future__ import annotations

from collections.abc import Hashable
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from canopy.controllers.fencing import Hold
from canopy.controllers.tasks import LeasedTaskController, locked, locked_held
from canopy.domain.errors import (
    CloudAuthError,
    CloudError,
    InvalidRequest,
    NotFound,
    TransientError,
    Unsupported,
)
from canopy.domain.states import DesiredState, Phase, PowerAction, RemoteState, ServerStatus
from canopy.notifications.events import SERVER_DELETE_END
from canopy.notifications.outbox import server_changed
from canopy.store import quota_usage
from canopy.store.claims import release_claim
from canopy.store.events import add_event
from canopy.store.leases import release_lease
from canopy.store.models import Server
from canopy.telemetry import CONTROLLER_STEPS


class PowerController(LeasedTaskController[Server]):
    name = "power"
    unplaced = True
    model = Server
    order_by = (Server.created_at,)

    def cloud_column(self) -> QueryableAttribute[str | None]:
        return Server.cloud

    def where(self) -> list[Any]:
        return [Server.phase.in_([Phase.POWER, Phase.DELETE])]

    async def local(self, s: AsyncSession, rows: list[Server]) -> list[Server]:
        """A server that never reached a cloud is deleted without calling one."""
        remote = []
        for server in rows:
            if server.phase == Phase.DELETE and (
                server.cloud is None
                or (server.remote_id is None and server.create_requested_at is None)
            ):
                await finalize_delete(s, server, self.rt.clock.now(), "never reached a cloud")
                server.claimed_by = server.claim_expires_at = None
            else:
                remote.append(server)
        return remote

    async def prepare(self, s: AsyncSession, rows: list[Server]) -> dict[Hashable, Any]:
        now = self.rt.clock.now()
        for server in rows:
            if server.phase == Phase.POWER:
                server.action_at = now
        return {}

    async def handle(self, server: Server, hold: Hold, extra: Any) -> None:
        cloud = server.cloud
        assert cloud is not None
        driver = self.rt.driver(cloud)
        call = self.rt.call
        try:
            if server.phase == Phase.DELETE:
                rid = server.remote_id
                if rid is None:
                    found = await call(cloud, "find", lambda: driver.find(server.id), hold=hold)
                    rid = found.remote_id if found else None
                if rid is not None:
                    target = rid
                    await call(cloud, "delete", lambda: driver.delete(target), hold=hold)
                await self._deleted(server.id)
                return
            action = _power_action(server)
            if action is None:
                await self._settle(server.id)
                return
            rid = server.remote_id
            assert rid is not None
            await call(cloud, action.value, lambda: driver.power(rid, action), hold=hold)
            await self._acted(server.id, action)
        except (TransientError, CloudAuthError) as e:
            # Refused credentials are the cloud's fault, not the request's: the cloud is
            # now unhealthy (Runtime.call) and the step is retried with backoff.
            await self._transient(server.id, e)
        except NotFound:
            if server.phase == Phase.DELETE:
                await self._deleted(server.id)
            else:
                await self._failed(server.id, "the server no longer exists on its cloud")
        except (InvalidRequest, Unsupported, CloudError) as e:
            await self._failed(server.id, str(e))

    async def _deleted(self, sid: str) -> None:
        async with self.rt.db.session() as s:
            server = await locked(s, sid)
            if server is not None and server.phase == Phase.DELETE:
                await finalize_delete(s, server, self.rt.clock.now(), "deleted")
            await release_lease(s, Server, sid, self.rt.worker_id)
        CONTROLLER_STEPS.labels(controller="power", outcome="deleted").inc()

    async def _acted(self, sid: str, action: PowerAction) -> None:
        now = self.rt.clock.now()
        async with self.rt.db.session() as s:
            server = await locked(s, sid)
            if server is None:
                return
            if server.phase == Phase.POWER:
                if action in (PowerAction.REBOOT_SOFT, PowerAction.REBOOT_HARD):
                    server.reboot_done = server.reboot_requested
                server.phase = Phase.CONVERGE
                server.retries = 0
                server.updated_at = now
                await add_event(
                    s,
                    server_id=sid,
                    action=_action_name(action),
                    event=f"compute_{action.value}",
                    result="Success",
                    details=None,
                    host=server.cloud,
                    now=now,
                )
            await release_lease(s, Server, sid, self.rt.worker_id)
        CONTROLLER_STEPS.labels(controller="power", outcome=action.value).inc()

    async def _settle(self, sid: str) -> None:
        """Nothing to do remotely (e.g. a stop of a server already stopped): wait for sync."""
        async with self.rt.db.session() as s:
            server = await locked(s, sid)
            if server is not None and server.phase == Phase.POWER:
                server.phase = Phase.CONVERGE
            await release_lease(s, Server, sid, self.rt.worker_id)

    async def _transient(self, sid: str, err: CloudError) -> None:
        now = self.rt.clock.now()
        async with self.rt.db.session() as s:
            server = await locked_held(s, sid, self.rt.worker_id)
            if server is None:
                return
            server.retries += 1
            server.next_attempt_at = now + timedelta(seconds=self.rt.backoff(server.retries))
            await release_lease(s, Server, sid, self.rt.worker_id)
        CONTROLLER_STEPS.labels(controller="power", outcome="transient").inc()

    async def _failed(self, sid: str, message: str) -> None:
        """A power action the cloud refused: back to what the cloud last reported."""
        now = self.rt.clock.now()
        async with self.rt.db.session() as s:
            server = await locked_held(s, sid, self.rt.worker_id)
            if server is None:
                return
            if server.phase == Phase.POWER:
                await add_event(
                    s,
                    server_id=sid,
                    action=_current_action(server),
                    event="power",
                    result="Error",
                    details=message,
                    host=server.cloud,
                    now=now,
                )
                server.phase = Phase.STEADY
                server.task_state = None
                server.reboot_done = server.reboot_requested
                running = server.observed_state == RemoteState.RUNNING
                server.status = ServerStatus.ACTIVE if running else ServerStatus.SHUTOFF
                server.desired_state = DesiredState.ACTIVE if running else DesiredState.STOPPED
                server.updated_at = now
            await release_lease(s, Server, sid, self.rt.worker_id)


async def finalize_delete(s: AsyncSession, server: Server, now: Any, why: str) -> None:
    """Mark a server deleted and give back its claim. Safe to call twice."""
    await release_claim(s, server.id)
    if not server.deleted:
        await quota_usage.release(s, server)  # it no longer counts against the quota
    server.phase = Phase.DONE
    server.status = ServerStatus.DELETED
    server.task_state = None
    server.deleted = True
    server.terminated_at = now
    server.updated_at = now
    server.next_attempt_at = None
    server_changed(s, SERVER_DELETE_END, server, now)
    await add_event(
        s,
        server_id=server.id,
        action="delete",
        event="compute_terminate_instance",
        result="Success",
        details=why,
        host=server.cloud,
        now=now,
    )


def _power_action(server: Server) -> PowerAction | None:
    if server.reboot_requested > server.reboot_done:
        return PowerAction.REBOOT_HARD if server.reboot_hard else PowerAction.REBOOT_SOFT
    if server.desired_state == DesiredState.STOPPED and server.observed_state != "stopped":
        return PowerAction.STOP
    if server.desired_state == DesiredState.ACTIVE and server.observed_state == "stopped":
        return PowerAction.START
    return None


def _action_name(action: PowerAction) -> str:
    return {"start": "start", "stop": "stop"}.get(action.value, "reboot")


def _current_action(server: Server) -> str:
    if server.reboot_requested > server.reboot_done:
        return "reboot"
    return "stop" if server.desired_state == DesiredState.STOPPED else "start"
