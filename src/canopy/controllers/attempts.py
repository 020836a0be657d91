"""What a failed attempt leaves behind: the blocks it causes and the server sent back.

A capacity error blocks (cloud, zone, flavor), or (cloud, every zone, flavor) when it named
no zone, for `blocklist_seconds` (store/capacity_blocks.py); a cloud quota error, which
holds for every size and zone, blocklists the whole cloud as before. Refused credentials
are no attempt at all: the cloud is unhealthy (controllers/health.py) and the server goes
back to placement with nothing counted against it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from canopy.domain.errors import CapacityError, CloudError
from canopy.domain.states import Phase, TaskState
from canopy.store.capacity_blocks import block
from canopy.store.claims import release_claim
from canopy.store.events import add_event
from canopy.store.models import Cloud, Server


async def blocklist_after(
    s: AsyncSession,
    server: Server,
    cloud: str,
    failure: CloudError | None,
    error: str,
    now: datetime,
    seconds: float,
) -> None:
    """Block what `failure` says is out of room, for `seconds`."""
    until = now + timedelta(seconds=seconds)
    if failure is None or isinstance(failure, CapacityError):
        zone = failure.zone if failure is not None else None
        await block(
            s, cloud=cloud, zone=zone, flavor_id=server.flavor_id, until=until, reason=error
        )
        return
    row = await s.get(Cloud, cloud)
    if row is not None:
        row.blocklisted_until = until
        row.blocklist_reason = error


def sent_before(log: list[Any]) -> bool:
    """Whether an earlier attempt of the server sent a create (it may have landed, its
    answer lost): the next attempt's create then looks the canopy id up first, whatever
    cloud or zone it is placed in, instead of counting as a first attempt."""
    return any(a.get("sent") for a in log)


def unplace(server: Server, now: datetime) -> None:
    """Forget where `server` was placed (its claim is released by the caller)."""
    server.cloud = None
    server.zone = None
    server.host = None
    server.reserved_host_id = None
    server.remote_id = None
    server.remote_recorded_at = None
    server.create_requested_at = None
    server.observed_state = None
    server.retries = 0
    server.next_attempt_at = None
    server.updated_at = now


async def back_to_placement(
    s: AsyncSession, server: Server, cloud: str, why: str, now: datetime
) -> None:
    """Send `server` back to placement without counting an attempt (the cloud's fault).

    When a create of this attempt went out and its answer was lost (`retries`: the call
    was retried), it may have landed: an `uncounted` entry with `sent` keeps that, so the
    next attempt looks the canopy id up before it creates (`sent_before`), wherever it is
    placed, as after an attempt whose retries ran out. It is no attempt: `max_attempts`
    and placement's passing over tried clouds skip it (summary.attempted)."""
    await release_claim(s, server.id)
    if server.retries > 0 and server.create_requested_at is not None:
        entry = {"cloud": cloud, "error": why, "sent": True, "uncounted": True}
        if server.zone:
            entry["zone"] = server.zone
        server.attempt_log = [*server.attempt_log, entry]
    unplace(server, now)
    server.phase = Phase.SCHEDULE
    server.task_state = TaskState.SCHEDULING
    await add_event(
        s,
        server_id=server.id,
        action="create",
        event=f"spawn (attempt {server.attempts})",
        result="Error",
        details=f"{cloud}: {why}; placing it again (not counted as an attempt)",
        host=cloud,
        now=now,
    )
