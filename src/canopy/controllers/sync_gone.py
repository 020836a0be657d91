"""What sync does with a row whose server the cloud no longer has: a delete that finished
(a server being deleted), or a server deleted outside canopy (ERROR, with a fault that says
so, its claim given back and an instance action event)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.controllers.listing import LIVE
from canopy.controllers.power import finalize_delete
from canopy.domain.states import Phase, RemoteState, ServerStatus
from canopy.notifications.outbox import servers_failed
from canopy.store.claim_counts import apply, drop
from canopy.store.events import event_row, latest_action_ids
from canopy.store.models import Claim, InstanceActionEvent, Server
from canopy.telemetry import CONTROLLER_STEPS


async def servers_gone(
    s: AsyncSession, rows: Sequence[Server], started: datetime, now: datetime
) -> None:
    """The cloud no longer has these rows' servers (its list began at `started`).

    A slice's worth at once, at the cost of a few statements, not a few per row: one
    DELETE of the failed rows' claims (the counters move by the counted ones, one UPDATE
    per cloud: store/claim_counts.py), one INSERT of their notifications and one of their
    instance action events. The rows themselves are flushed with the transaction. Rows
    being deleted are finished one by one (`finalize_delete`), as everywhere else."""
    failing: list[Server] = []
    for row in {row.id: row for row in rows}.values():  # a server listed twice is one
        if row.remote_recorded_at is not None and row.remote_recorded_at >= started:
            continue  # recorded after the list began: the list cannot know it
        if row.phase == Phase.DELETE:
            await finalize_delete(s, row, now, "gone from the cloud")
        elif row.phase in LIVE:
            failing.append(row)
    if not failing:
        return
    ids = [row.id for row in failing]
    await apply(s, await drop(s, Claim.server_id.in_(ids)))
    for row in failing:
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
    await servers_failed(s, failing, now)
    acts = await latest_action_ids(s, ids, "create")
    logged = [
        event_row(
            acts[row.id],
            event="sync",
            result="Error",
            details=row.fault_message,
            host=row.cloud,
            now=now,
        )
        for row in failing
        if row.id in acts
    ]
    if logged:
        await s.execute(insert(InstanceActionEvent), logged)
    CONTROLLER_STEPS.labels(controller="sync", outcome="deleted_out_of_band").inc(len(failing))


async def rows_gone(
    s: AsyncSession,
    cloud: str,
    ids: Sequence[str],
    alive: set[str],
    started: datetime,
    now: datetime,
) -> None:
    """Rows `ids` on `cloud`, whose servers a full listing (`alive`) no longer shows: each
    checked again on its locked row (it may have moved meanwhile), then `servers_gone`."""
    rows = [
        row
        for row in await lock_rows(s, Server.id.in_(ids))
        if row.cloud == cloud
        and row.remote_id is not None
        and row.remote_id not in alive
        and not row.deleted
        and row.phase in (*LIVE, Phase.DELETE)
    ]
    await servers_gone(s, rows, started, now)


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
