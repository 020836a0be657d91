"""Provisioning's failures: a transient error is retried with backoff; a capacity or quota
error releases the claim, blocks what it says is out of room (controllers/attempts.py) and
sends the server back to placement; after `max_attempts` clouds the server goes to ERROR. A
boot that ends in ERROR is cleaned up first. Refused credentials are not an attempt."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from canopy.controllers.attempts import back_to_placement, blocklist_after, unplace
from canopy.controllers.fencing import Hold
from canopy.controllers.runtime import Runtime
from canopy.controllers.summary import attempts_text, clouds_tried
from canopy.controllers.tasks import locked_held
from canopy.domain.errors import CloudAuthError, CloudError, NoAnswer, TransientError
from canopy.domain.states import Phase, ServerStatus, TaskState
from canopy.notifications.outbox import server_failed
from canopy.store.claims import release_claim
from canopy.store.events import add_event
from canopy.store.leases import release_lease
from canopy.store.models import Server
from canopy.telemetry import CONTROLLER_STEPS


class CreateFailures:
    """The provisioning controller's handling of failed creates and failed boots."""

    rt: Runtime

    async def _transient(self, sid: str, cloud: str, err: CloudError) -> None:
        rt = self.rt
        now = rt.clock.now()
        async with rt.db.session() as s:
            server = await locked_held(s, sid, rt.worker_id)
            if server is None:
                return
            server.retries += 1
            if server.retries > rt.settings.controllers.max_transient_retries and (
                server.phase == Phase.CREATE
            ):
                await release_lease(s, Server, sid, rt.worker_id)
                await self._fail_attempt(
                    s,
                    server,
                    cloud,
                    f"kept failing ({server.retries} tries): {err}",
                    False,
                    sent=True,  # its creates' outcome is unknown: one may have landed
                )
                if isinstance(err, NoAnswer) and server.phase == Phase.SCHEDULE:
                    # The last create may still land: the next attempt's look-up must come
                    # after it could have (as a retry's does, below).
                    server.next_attempt_at = now + timedelta(
                        seconds=rt.settings.controllers.call_timeout_seconds
                    )
                gave_up = True
            else:
                delay = rt.backoff(server.retries)
                if isinstance(err, NoAnswer) and server.phase == Phase.CREATE:
                    # The create was sent and may yet land: Nova has no client token, so the
                    # next attempt's lookup must come after it could have, or it finds
                    # nothing and creates a second server.
                    delay = max(delay, rt.settings.controllers.call_timeout_seconds)
                server.next_attempt_at = now + timedelta(seconds=delay)
                await release_lease(s, Server, sid, rt.worker_id)
                gave_up = False
        if gave_up:
            self.rt.notify("placement")
            return
        CONTROLLER_STEPS.labels(controller="provisioning", outcome="transient").inc()

    async def _attempt_failed(
        self,
        sid: str,
        cloud: str,
        error: str,
        *,
        blocklist: bool,
        failure: CloudError | None = None,
    ) -> None:
        async with self.rt.db.session() as s:
            server = await locked_held(s, sid, self.rt.worker_id)
            if server is None:
                return
            await release_lease(s, Server, sid, self.rt.worker_id)
            if server.phase not in (Phase.CREATE, Phase.RESCHEDULE) or server.cloud != cloud:
                return  # deleted meanwhile: the delete path releases the claim
            await self._fail_attempt(s, server, cloud, error, blocklist, failure)
        self.rt.notify("placement")  # committed: back in phase schedule (or failed)

    async def _credentials_refused(self, sid: str, cloud: str, err: CloudAuthError) -> None:
        """The cloud refused canopy's credentials: not this server's attempt (the cloud is
        unhealthy now, see controllers/health.py); place it again elsewhere."""
        async with self.rt.db.session() as s:
            server = await locked_held(s, sid, self.rt.worker_id)
            if server is None:
                return
            await release_lease(s, Server, sid, self.rt.worker_id)
            if server.phase != Phase.CREATE or server.cloud != cloud:
                return
            await back_to_placement(s, server, cloud, str(err), self.rt.clock.now())
        CONTROLLER_STEPS.labels(controller="provisioning", outcome="credentials_refused").inc()
        self.rt.notify("placement")

    async def _fail_attempt(
        self,
        s: AsyncSession,
        server: Server,
        cloud: str,
        error: str,
        blocklist: bool,
        failure: CloudError | None = None,
        *,
        sent: bool = False,
    ) -> None:
        """The attempt failed: blocks, the attempt log, and the server back to placement
        (or failed). `sent`: a create of this attempt may have landed with its answer lost
        (the retries ran out), so the next attempt looks the canopy id up before creating;
        not for a refusal or a cleaned-up boot, whose server is gone or never was (a look-up
        then could find one still being deleted)."""
        rt = self.rt
        now = rt.clock.now()
        sched = rt.settings.scheduler
        await release_claim(s, server.id)
        # The zone that failed: the one the cloud named, else the one the server was in.
        zone = (failure.zone if failure is not None else None) or server.zone
        # A server pinned to a reserved host failed on that host alone: the rest of the
        # cloud is no fuller for it.
        if blocklist and sched.blocklist_seconds > 0 and server.reserved_host_id is None:
            await blocklist_after(s, server, cloud, failure, error, now, sched.blocklist_seconds)
        entry: dict[str, Any] = {"cloud": cloud, "error": error}
        if zone:
            entry["zone"] = zone
        if sent:
            entry["sent"] = True  # the next attempt looks first (attempts.sent_before)
        server.attempt_log = [*server.attempt_log, entry]
        unplace(server, now)
        await add_event(
            s,
            server_id=server.id,
            action="create",
            event=f"spawn (attempt {server.attempts})",
            result="Error",
            details=f"{cloud} (zone {zone}): {error}" if zone else f"{cloud}: {error}",
            host=cloud,
            now=now,
        )
        if clouds_tried(server.attempt_log) >= sched.max_attempts:
            server.phase = Phase.FAILED
            server.status = ServerStatus.ERROR
            server.task_state = None
            server.fault_code = 500
            server.fault_message = (
                "Exceeded maximum number of retries. Exhausted all hosts available for "
                f"retrying build failures for instance {server.id}. Attempts: "
                f"{attempts_text(server.attempt_log)}"
            )
            server.fault_at = now
            server_failed(s, server, now)
            outcome = "error"
        else:
            server.phase = Phase.SCHEDULE
            server.task_state = TaskState.SCHEDULING
            server.fault_message = None
            outcome = "rescheduled"
        CONTROLLER_STEPS.labels(controller="provisioning", outcome=outcome).inc()

    async def _reschedule(self, server: Server, hold: Hold) -> None:
        """A boot ended in ERROR: delete what the cloud has, then try elsewhere."""
        cloud = server.cloud
        assert cloud is not None
        driver = self.rt.driver(cloud)
        rid = server.remote_id
        try:
            if rid is None:
                found = await self.rt.call(cloud, "find", lambda: driver.find(server.id), hold=hold)
                rid = found.remote_id if found else None
            if rid is not None:
                target = rid
                await self.rt.call(cloud, "delete", lambda: driver.delete(target), hold=hold)
        except (TransientError, CloudAuthError) as e:
            await self._transient(server.id, cloud, e)
            return
        fault = server.fault_message or "boot failed"
        await self._attempt_failed(server.id, cloud, f"boot failed: {fault}", blocklist=False)
