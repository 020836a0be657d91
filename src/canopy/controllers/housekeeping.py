"""Housekeeping: the periodic job that purges expired tokens and stale login failures,
and repairs the projects' quota usage counters and the clouds' claim counters where they
drifted from their rows (the drift computed in a read, applied in a short write).

It is a row of `jobs` taken through `lease_job`, so with many workers on PostgreSQL one of
them runs it per interval (`[identity] purge_interval_seconds`), not all at once. Each pass
deletes bounded batches in one short transaction; while batches come back full, the next
pass follows at once, so a backlog drains without any one transaction holding locks long.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from canopy.controllers.runtime import Runtime
from canopy.services import throttle, tokens
from canopy.services.throttle import ThrottlePolicy
from canopy.store import claim_counts, quota_usage
from canopy.store.leases import lease_job

log = logging.getLogger("canopy.housekeeping")

JOB = "housekeeping"
BATCH = 1000
RECOUNT = 20  # projects recounted per pass, each in its own short transaction


class HousekeepingController:
    def __init__(self, rt: Runtime, *, batch: int = BATCH) -> None:
        self.rt = rt
        self.batch = batch
        # When the job is next worth asking for, so an idle wake costs no transaction.
        self._not_before: datetime | None = None
        self._recount_after: str | None = None  # where the walk over the projects is

    @property
    def idle(self) -> float:
        """How long the worker's loop may sleep between looks (it is also woken by notify)."""
        return min(60.0, self.rt.settings.identity.purge_interval_seconds)

    async def run_once(self) -> int:
        """Purge one batch of each kind if the job is due and ours; how many rows went."""
        rt = self.rt
        now = rt.clock.now()
        if self._not_before is not None and now < self._not_before:
            return 0
        interval = timedelta(seconds=rt.settings.identity.purge_interval_seconds)
        policy = ThrottlePolicy.from_settings(rt.settings.identity)
        async with rt.db.session() as s:
            job = await lease_job(
                s,
                name=JOB,
                worker=rt.worker_id,
                now=now,
                lease_seconds=rt.lease_seconds,
                lease_now=rt.lease_now(),  # expiry on the one clock all workers share
            )
            if job is None:  # not due, or another worker has it
                self._not_before = now + interval
                return 0
            expired = await tokens.purge_expired(s, now, limit=self.batch)
            stale = await throttle.purge(s, policy, now, limit=self.batch)
            more = expired >= self.batch or stale >= self.batch
            job.next_run_at = now if more else now + interval
            job.last_run_at = now
            job.runs += 1
            job.claimed_by = None
            job.claim_expires_at = None
        self._not_before = None if more else now + interval
        await self.recount(now)
        await self.repair_clouds()
        if expired or stale:
            log.info("purged %d expired tokens and %d stale login failures", expired, stale)
        return expired + stale

    async def recount(self, now: datetime, limit: int = RECOUNT) -> int:
        """Recount the usage counters of the next `limit` projects; how many had drifted.

        The counters are kept in the transactions that change them; this repairs what
        anything else could leave (store/quota_usage.py). It walks the projects in id
        order, a few per pass, and starts again at the end. The counting is one read;
        only a project that drifted gets a (short) write.
        """
        async with self.rt.db.read() as s:
            ids = await quota_usage.projects_after(s, self._recount_after, limit)
            found = await quota_usage.drifts(s, ids)
        self._recount_after = ids[-1] if len(ids) == limit else None
        drifted = 0
        for d in found:
            if not d.drifted:
                continue
            async with self.rt.db.session() as s:
                if d.repairs is None:  # no counter row yet: counted under the project lock
                    await quota_usage.recount(s, d.project_id, now)
                elif await quota_usage.repair(s, d, now):
                    drifted += 1
        return drifted

    async def repair_clouds(self) -> int:
        """Repair the clouds' claim counters that drifted from their counted claims (one
        read for all of them; a short write per cloud that drifted); how many did."""
        return len(await claim_counts.repair(self.rt.db))
