"""What sync does with a row whose server the cloud no longer has: a delete that finished
(a server being deleted), or a server deleted outside canopy (ERROR, with a fault that says
so, its claim given back and an instance action event)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.controllers.listing import LIVE
from canopy.controllers.power import finalize_delete
from canopy.domain.states import Phase, RemoteState, ServerStatus
from canopy.notifications.outbox import server_failed
from canopy.store.claims import release_claim
from canopy.store.events import add_event
from canopy.store.models import Server
from canopy.telemetry import CONTROLLER_STEPS


async def server_gone(s: AsyncSession, row: Server, started: datetime, now: datetime) -> None:
    """The cloud no longer has `row`'s server (its list began at `started`)."""
    if row.remote_recorded_at is not None and row.remote_recorded_at >= started:
        return  # recorded after the list began: the list cannot know it
    if row.phase == Phase.DELETE:
        await finalize_delete(s, row, now, "gone from the cloud")
        return
    if row.phase not in LIVE:
        return
    await release_claim(s, row.id)
    row.phase = Phase.FAILED
    row.status = ServerStatus.ERROR
    row.task_state = None
    row.observed_state = RemoteState.DELETED
    row.fault_code = 404
    row.fault_message = (
        f"The server was deleted outside canopy: {row.cloud} no longer has {row.remote_id}."
    )
    row.fault_at = now
    row.updated_at = now
    server_failed(s, row, now)
    await add_event(
        s,
        server_id=row.id,
        action="create",
        event="sync",
        result="Error",
        details=row.fault_message,
        host=row.cloud,
        now=now,
    )
    CONTROLLER_STEPS.labels(controller="sync", outcome="deleted_out_of_band").inc()


async def rows_gone(
    s: AsyncSession,
    cloud: str,
    ids: Sequence[str],
    alive: set[str],
    started: datetime,
    now: datetime,
) -> None:
    """Rows `ids` on `cloud`, whose servers a full listing (`alive`) no longer shows: each
    checked again on its locked row (it may have moved meanwhile), then `server_gone`."""
    for row in await lock_rows(s, Server.id.in_(ids)):
        if (
            row.cloud == cloud
            and row.remote_id is not None
            and row.remote_id not in alive
            and not row.deleted
            and row.phase in (*LIVE, Phase.DELETE)
        ):
            await server_gone(s, row, started, now)


async def lock_rows(s: AsyncSession, *where: ColumnElement[bool]) -> list[Server]:
    """Rows matching `where`, locked for this transaction; rows locked elsewhere are skipped.

    Skipping (never waiting) keeps sync out of lock cycles with placement and the API.
    """
    q = (
        select(Server)
        .where(*where)
        .order_by(Server.id)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    return list((await s.execute(q)).scalars())
