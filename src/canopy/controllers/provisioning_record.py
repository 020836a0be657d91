"""Provisioning's record of finished creates: creates that finish together are recorded
in one transaction (group commit), with Core statements on the columns involved."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import insert, select, update

from canopy.controllers.observe import apply_observation
from canopy.controllers.runtime import Runtime
from canopy.domain.specs import RemoteServer
from canopy.domain.states import Phase
from canopy.notifications.outbox import servers_observed
from canopy.store.events import event_row, latest_action_ids
from canopy.store.models import InstanceActionEvent, Server
from canopy.telemetry import CONTROLLER_STEPS

_Record = tuple[str, str, RemoteServer, "asyncio.Future[None]"]
_RECORD_WINDOW = 0.02  # seconds a finished create waits for others to share its transaction
# What recording a create reads and may change: `apply_observation`'s fields and the lease.
_RECORD_COLUMNS = (
    Server.id,
    Server.cloud,
    Server.remote_id,
    Server.remote_recorded_at,
    Server.zone,
    Server.host,
    Server.phase,
    Server.attempts,
    Server.retries,
    Server.updated_at,
    Server.claimed_by,
    Server.claim_expires_at,
    Server.status,
    Server.task_state,
    Server.desired_state,
    Server.observed_state,
    Server.observed_at,
    Server.action_at,
    Server.reboot_requested,
    Server.reboot_done,
    Server.launched_at,
    Server.addresses,
    Server.fault_code,
    Server.fault_message,
    Server.fault_at,
)


class CreateRecording:
    """The provisioning controller's recording of created servers."""

    rt: Runtime
    _records: list[_Record]
    _recorder: asyncio.Task[None] | None

    async def _created(self, sid: str, cloud: str, remote: RemoteServer) -> None:
        """Record a create; creates finishing together share one transaction.

        Until it is recorded, a created server exists only in the cloud (tagged with its
        canopy id) and as `create_requested_at` in its row: if this worker dies now, the
        lease expires and the retried create, or sync's adoption, finds it by that id.
        """
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._records.append((sid, cloud, remote, done))
        if self._recorder is None or self._recorder.done():
            self._recorder = asyncio.create_task(self._record_all())
        await done

    async def _record_all(self) -> None:
        while self._records:
            # Group commit: creates finish about together, so a moment's wait lets one
            # transaction record many of them instead of one or two.
            await asyncio.sleep(_RECORD_WINDOW)
            batch, self._records = self._records, []
            try:
                await self._record(batch)
            except BaseException as e:
                for *_, fut in batch:
                    if not fut.done():
                        fut.set_exception(e)
                if isinstance(e, asyncio.CancelledError):
                    raise
            else:
                for *_, fut in batch:
                    if not fut.done():
                        fut.set_result(None)

    async def _record(self, batch: list[_Record]) -> None:
        """Record finished creates: Core statements on the columns involved, no ORM rows."""
        rt = self.rt
        now = rt.clock.now()
        ids = [sid for sid, *_ in batch]
        async with rt.db.session() as s:
            found = await s.execute(
                select(*_RECORD_COLUMNS)
                .where(Server.id.in_(ids))
                .order_by(Server.id)
                .with_for_update()
            )
            rows = {row.id: row for row in found}
            actions = await latest_action_ids(s, ids, "create")
            events: list[dict[str, Any]] = []
            changes: list[dict[str, Any]] = []
            observed: dict[str, str | None] = {}
            booting: set[str] = set()
            for sid, cloud, remote, _ in batch:
                row = rows.get(sid)
                if row is None:
                    continue
                new = SimpleNamespace(**row._asdict())
                if row.cloud == cloud and row.remote_id is None:
                    new.remote_id = remote.remote_id
                    new.remote_recorded_at = now
                    new.zone = remote.zone or row.zone  # where the cloud put it
                    new.host = remote.host or row.host
                if row.phase == Phase.CREATE and row.cloud == cloud:
                    booting.add(cloud)
                    new.phase = Phase.CONVERGE
                    new.retries = 0
                    new.updated_at = now
                    if sid in actions:
                        events.append(
                            event_row(
                                actions[sid],
                                event=f"spawn (attempt {row.attempts})",
                                result="Success",
                                details=f"created {remote.remote_id} on {cloud}",
                                host=cloud,
                                now=now,
                            )
                        )
                    observed[sid] = apply_observation(
                        new, remote.state, now, fault=remote.fault, addresses=remote.addresses
                    )
                if row.claimed_by == rt.worker_id:
                    new.claimed_by = None
                    new.claim_expires_at = None
                values = {k: v for k, v in vars(new).items() if k != "id" and v != getattr(row, k)}
                if values:
                    changes.append({"id": sid, **values})
            if changes:  # ORM bulk UPDATE by primary key: one executemany per set of columns
                await s.execute(update(Server), changes)
            if events:
                await s.execute(insert(InstanceActionEvent), events)
            await servers_observed(s, observed, now)
        # Committed: sync is to see these boot at its converging interval, not at rest's,
        # and to look when their boot is expected to end (controllers/boot_times.py). The
        # cloud's sync job may be another worker's: that worker is told too.
        for cloud in booting:
            await ask_converging_sync(rt, cloud, now)
        if booting:
            rt.notify("sync")
            rt.tell_others(*(f"sync:{cloud}" for cloud in sorted(booting)))
        CONTROLLER_STEPS.labels(controller="provisioning", outcome="created").inc(len(batch))


async def ask_converging_sync(rt: Runtime, cloud: str, now: datetime) -> None:
    """Ask for passes over `cloud` as creates just recorded there want them: one at the
    converging interval, and one when each boot is expected to end."""
    c = rt.settings.controllers
    rt.sync_soon.ask_by(
        cloud, now + timedelta(seconds=min(c.sync_seconds, c.sync_converging_seconds))
    )
    for seconds in await rt.boots.looks(rt.db, cloud, at=now):
        rt.sync_soon.ask(cloud, now + timedelta(seconds=seconds))
