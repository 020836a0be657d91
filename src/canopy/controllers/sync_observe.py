"""Sync's write side: one slice of listed servers applied to their rows, under lock.

Adoption (a row created but never recorded), leaks (a server whose row is gone, deleted,
on another cloud, or a second copy), deletes seen in a changes-since listing, and the
observation of each live server (controllers/observe.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.controllers.listing import LIVE
from canopy.controllers.observe import apply_observation
from canopy.controllers.runtime import Runtime
from canopy.controllers.sync_gone import lock_rows, servers_gone
from canopy.domain.specs import RemoteServer
from canopy.domain.states import Phase, RemoteState
from canopy.notifications.outbox import server_observed
from canopy.store.events import add_event
from canopy.store.leases import live
from canopy.store.models import Server


async def observe(
    rt: Runtime,
    s: AsyncSession,
    cloud: str,
    part: Sequence[RemoteServer],
    adopting: set[str],
    started: datetime,
    last_pass: datetime | None,
) -> tuple[list[str], bool]:
    """Apply one slice of listed servers to their rows, locked; return leaks and
    whether a failed boot now waits for provisioning."""
    now = rt.clock.now()
    ids = [r.canopy_id for r in part if r.canopy_id]
    # Rows to adopt (created, never recorded) whose create step is still running.
    wanted = [i for i in ids if i in adopting]
    leased: set[str] = set()
    if wanted:
        leased.update(
            await s.scalars(
                select(Server.id).where(Server.id.in_(wanted), live(Server, rt.lease_now()))
            )
        )
    # Locked; a row someone else holds is left for the next pass.
    rows = {r.id: r for r in await lock_rows(s, Server.id.in_(ids))} if ids else {}
    leaks: list[str] = []
    gone: list[Server] = []  # written together, after the loop (controllers/sync_gone.py)
    rescheduled = False
    for r in part:
        row = rows.get(r.canopy_id) if r.canopy_id else None
        if row is None:
            continue  # busy elsewhere (or gone since the read): next pass
        if r.state == RemoteState.DELETED:
            if row.cloud == cloud and row.remote_id == r.remote_id:
                gone.append(row)
            continue
        if row.deleted or row.cloud != cloud:
            leaks.append(r.remote_id)
            continue
        if row.remote_id is None:
            row.remote_id = r.remote_id  # adoption: created, but never recorded
            row.remote_recorded_at = now
            row.zone = r.zone or row.zone
            if row.phase == Phase.CREATE and row.id not in leased:
                row.phase = Phase.CONVERGE
            await add_event(
                s,
                server_id=row.id,
                action="create",
                event="adopt",
                result="Success",
                details=f"adopted {r.remote_id} found on {cloud} by its canopy id",
                host=cloud,
                now=now,
            )
        elif row.remote_id != r.remote_id:
            leaks.append(r.remote_id)  # a second copy: keep the recorded one
            continue
        if r.host is not None and row.host != r.host:
            row.host = r.host  # where the cloud runs it (moved, or not yet recorded)
        if row.phase in LIVE or row.phase == Phase.CREATE:
            changed = apply_observation(row, r.state, started, fault=r.fault, addresses=r.addresses)
            if changed == "active":  # booted: learn the cloud's boot time
                rt.boots.saw_boot(cloud, row, r, started, last_pass)
            server_observed(s, row, changed, now)
            if changed:
                row.updated_at = now
            rescheduled |= row.phase == Phase.RESCHEDULE
    await servers_gone(s, gone, started, now)
    return leaks, rescheduled
