"""Sync, per cloud: observe, adopt, collect leaks, and notice servers deleted behind our back.

One worker at a time runs a cloud's sync, through a lease on its `jobs` row; its cloud calls
(the list, the deletes of leaks) are fenced on that lease like any step's. Each pass lists
the cloud's canopy-tagged servers (changes since the last pass, with an overlap; everything
every `full_sync_every` passes) and reconciles them with the rows:

- a remote server whose row is gone, deleted, or placed on another cloud is a leak: delete it;
- a remote server whose row has no remote id yet (a crash after create) is adopted;
- a row whose remote server has disappeared was deleted out of band: ERROR with a fault, or
  simply deleted if that is what the user wanted.

A remote server without a canopy id is not canopy's and is never touched, whatever a
driver's list returns: sync deletes only what canopy created. Nor is one tagged by another
installation (sharing the account); and a server with no row is a leak only if it carries
this installation's tag (controllers/sync_read.py). A full pass also asks the
cloud for its zones, and every pass records the driver's abilities, on the cloud's row,
where placement and the API read them (the API never calls a cloud). A pass whose list
succeeds marks the cloud healthy: it is the probe that ends an outage, credentials refused
included (controllers/health.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.controllers.boot_times import look_again
from canopy.controllers.fencing import Hold, LeaseLost
from canopy.controllers.health import ability_map, sync_failed
from canopy.controllers.listing import LIVE, converging
from canopy.controllers.observe import apply_observation
from canopy.controllers.runtime import Runtime
from canopy.controllers.sync_digest import (
    Digest,
    active_remote_ids,
    alive_ids,
    missing_among,
    release,
)
from canopy.controllers.sync_gone import lock_rows, rows_gone, server_gone
from canopy.controllers.sync_read import compare, missing, slices
from canopy.controllers.sync_schedule import SyncSchedule
from canopy.controllers.sync_turns import deep_pass, end_pass, turn
from canopy.domain.errors import CloudError
from canopy.domain.specs import RemoteServer
from canopy.domain.states import Phase, RemoteState
from canopy.notifications.outbox import server_observed
from canopy.store.events import add_event
from canopy.store.leases import When, lease_job, live, release_lease
from canopy.store.models import Cloud, Job, Server
from canopy.telemetry import CONTROLLER_STEPS

log = logging.getLogger("canopy.sync")


class SyncController(SyncSchedule):
    """Runs the due sync jobs of every cloud this worker has a driver for."""

    def __init__(self, rt: Runtime) -> None:
        super().__init__(rt)
        # Each cloud's digest of unchanged servers (controllers/sync_digest.py).
        self._digests: dict[str, Digest] = {}

    async def run_once(self, *, force: bool = False) -> int:
        done = 0
        for cloud in sorted(self.rt.drivers):
            if await self.sync_cloud(cloud, force=force):
                done += 1
        return done

    async def sync_cloud(self, cloud: str, *, force: bool = False) -> bool:
        """One pass over one cloud, if it is due (or forced) and no other worker holds it."""
        rt = self.rt
        now = rt.clock.now()
        name = f"sync:{cloud}"
        if not force and now < self._held_off.get(cloud, now):
            return False
        hurried = self._hurried(cloud, now)
        if not force and not hurried:
            async with rt.db_slot:
                due = await self._due(cloud, name, now)
            if not due:
                return False
        keeper = rt.leases(Job)
        if name in keeper:
            return False  # this worker is on it already
        # The passes of every cloud start at once: their transactions take turns on
        # `db_slot` (controllers/runtime.py), their cloud calls overlap.
        async with rt.db_slot:
            sent = asyncio.get_running_loop().time()  # before the lease is written: see Hold
            lease, lease_now = await self._lease(cloud, name, now, force=force, hurried=hurried)
        if lease is None:
            return False
        full, since = lease
        self._not_before[cloud] = now + timedelta(seconds=rt.settings.controllers.sync_seconds)
        hold = keeper.hold(name, renewed=sent, at=lease_now)
        listing: list[RemoteServer] = []
        try:
            listing = await self._pass(cloud, name, hold, since, full)
        except LeaseLost as e:
            log.warning("sync %s: pass abandoned: %s", cloud, e)
            CONTROLLER_STEPS.labels(controller="sync", outcome="lease_lost").inc()
        finally:
            keeper.drop(hold)
        # Freed at once, 100,000 listed servers held the loop for 20-30 ms: a chunk at a
        # time, once the pass is over (its hold dropped, the job's lease released).
        await release(listing)
        return True

    async def _lease(
        self, cloud: str, name: str, now: datetime, *, force: bool, hurried: bool
    ) -> tuple[tuple[bool, datetime | None] | None, When]:
        """Lease the cloud's sync job: ((full pass?, since), lease clock reading); None if
        another worker holds it or it is not due after all."""
        rt = self.rt
        async with rt.db.session() as s:
            lease_now = rt.lease_now()
            job = await lease_job(
                s,
                name=name,
                worker=rt.worker_id,
                now=now,
                lease_seconds=rt.lease_seconds,
                lease_now=lease_now,
                force=force or hurried,
            )
            if job is None:
                if force or hurried:
                    self._held_elsewhere(cloud, now)  # a forced take fails on that alone
                else:  # held elsewhere or not due after all: `_due` reads it again then
                    self._not_before[cloud] = now + timedelta(
                        seconds=rt.settings.controllers.sync_seconds
                    )
                return None, lease_now
            self._held_off.pop(cloud, None)
            if hurried:
                self.rt.sync_soon.served(cloud, now)  # later asks, or set meanwhile, stay
            full = job.cursor is None or job.runs % rt.settings.controllers.full_sync_every == 0
            since = None if full else job.cursor
        return (full, since), lease_now

    async def _pass(
        self, cloud: str, name: str, hold: Hold, since: datetime | None, full: bool
    ) -> list[RemoteServer]:
        """List, reconcile and delete leaks, every call fenced on the job's lease; return
        the listing, for the caller to release."""
        rt = self.rt
        driver = rt.driver(cloud)
        started = rt.clock.now()
        zones: list[str] | None = None
        try:
            if full:
                zones = await rt.call(cloud, "zones", driver.zones, hold=hold)
            remote = await rt.call(cloud, "list", lambda: driver.list(since), hold=hold)
        except CloudError as e:
            async with rt.db_slot:
                await sync_failed(rt, cloud, name, e)
            return []
        # The database part, under one slot: its transactions follow one another.
        async with rt.db_slot:
            leaks = await self._reconcile(cloud, name, remote, started, full, zones)
        if not leaks:
            return remote  # the job's lease was released with the pass's results
        try:
            for rid in leaks:
                try:
                    await rt.call(
                        cloud,
                        "delete",
                        lambda rid=rid: driver.delete(rid),  # type: ignore[misc]
                        hold=hold,
                    )
                    CONTROLLER_STEPS.labels(controller="sync", outcome="leak_deleted").inc()
                    log.info("sync %s: deleted leaked remote server %s", cloud, rid)
                except CloudError as e:
                    log.warning("sync %s: could not delete leak %s yet: %s", cloud, rid, e)
        finally:
            async with rt.db_slot, rt.db.session() as s:
                await release_lease(s, Job, name, rt.worker_id)
        return remote

    async def _reconcile(
        self,
        cloud: str,
        job_name: str,
        remote: list[RemoteServer],
        started: datetime,
        full: bool,
        zones: list[str] | None = None,
    ) -> list[str]:
        """Record what the listing changed; return the remote ids of leaks to delete.

        The listing is compared without locks, a slice at a time (controllers/sync_read.py);
        the rows it changes are then locked and written a slice per transaction, each
        checking that this worker still holds the job, and the pass is recorded last. A
        crash between slices loses nothing: the job's cursor has not moved, so the next
        pass lists the same changes again.
        """
        rt = self.rt
        await self._held(job_name)  # no point comparing for a job another worker has
        digest, deep = self._digest(cloud, full)
        marked = deep_pass(deep)  # a deep pass's slices let the API go first
        try:
            # Unchanged servers with settled rows are not read (controllers/sync_digest.py).
            active = await active_remote_ids(rt.db, cloud) if digest.seen else set()
            listed = remote if deep else await digest.changed(remote, active)
            inst = await rt.installation_id()
            seen = await compare(rt.db, cloud, listed, started, inst, digest)
            leaks = seen.leaks
            rescheduled = False
            for part in slices(seen.busy):
                # The turn first, then the write lock (controllers/sync_turns.py).
                async with turn(), rt.db.session() as s:
                    await self._held(job_name, s)
                    more, resched = await self._observe(s, cloud, part, seen.adopting, started)
                    leaks += more
                    rescheduled |= resched
            if full:
                # Rows whose server the full list no longer shows were deleted behind our back.
                alive = await alive_ids(remote)
                if deep:
                    gone = await missing(rt.db, cloud, alive, started)
                else:
                    absent = await digest.absent(alive) | (active - alive)
                    digest.forget(absent)
                    gone = await missing_among(rt.db, cloud, absent, started)
                await self._all_gone(job_name, cloud, gone, alive, started)
        except BaseException:
            self._digests.pop(cloud, None)  # maybe half-built: the next full pass is deep
            raise
        finally:
            end_pass(marked)
        if deep:
            digest.complete, digest.since_deep = True, 0
        elif full:
            digest.since_deep += 1
        now = rt.clock.now()
        overlap = timedelta(seconds=rt.settings.controllers.sync_overlap_seconds)
        async with rt.db.session() as s:
            job = await self._held(job_name, s)
            interval = await self._interval(s, cloud)
            job.runs += 1
            job.cursor = started - overlap
            job.last_run_at = now
            job.last_error = None
            job.next_run_at = now + timedelta(seconds=interval)
            if not leaks:  # else kept for the deletes of the leaks, then released
                job.claimed_by = None
                job.claim_expires_at = None
            c = await s.get(Cloud, cloud)
            if c is not None:
                c.healthy = True
                c.health_message = ""
                c.consecutive_failures = 0
                c.last_ok_at = now
                if zones is not None:
                    c.zones = list(zones)
                    c.zones_updated_at = now
                lacking = ability_map(rt.driver(cloud))
                if (c.abilities or {}) != lacking:
                    c.abilities = lacking
        self._not_before[cloud] = now + timedelta(seconds=interval)
        self._last_pass[cloud] = started
        if interval < rt.settings.controllers.sync_seconds:  # something still converges
            await self._look_again(cloud, started)
        if rescheduled:
            rt.notify("provisioning")  # committed: a failed boot is to be cleaned up
        return leaks

    async def _look_again(self, cloud: str, started: datetime) -> None:
        """Boots this pass should have seen (their last look was before it) and did not:
        look for them again soon (controllers/boot_times.py), not a converging interval on."""
        rt = self.rt
        last = await rt.boots.last_look(rt.db, cloud)
        if last is not None:
            at = await look_again(rt.db, cloud, started, last)
            if at is not None:
                rt.sync_soon.ask(cloud, at)

    def _digest(self, cloud: str, full: bool) -> tuple[Digest, bool]:
        """The cloud's digest, and whether this pass is a deep one (which rebuilds it)."""
        digest = self._digests.get(cloud)
        if digest is None or (
            full and digest.deep_due(self.rt.settings.controllers.sync_deep_every)
        ):
            digest = self._digests[cloud] = Digest()
        return digest, full and not digest.complete

    async def _all_gone(
        self, job_name: str, cloud: str, ids: list[str], alive: set[str], started: datetime
    ) -> None:
        """Rows `ids` lost their servers (not in `alive`): checked again under lock."""
        for part in slices(ids):
            async with turn(), self.rt.db.session() as s:
                await self._held(job_name, s)
                await rows_gone(s, cloud, part, alive, started, self.rt.clock.now())

    async def _held(self, job_name: str, s: AsyncSession | None = None) -> Job:
        """The job, locked in `s` (else read), if this worker holds it; else LeaseLost.

        A pass's results are recorded only by the job's holder.
        """
        if s is None:
            async with self.rt.db.read() as r:
                job = await r.get(Job, job_name)
        else:
            job = (
                await s.execute(select(Job).where(Job.name == job_name).with_for_update())
            ).scalar_one_or_none()
        if job is None or job.claimed_by != self.rt.worker_id:
            holder = job.claimed_by if job else None
            raise LeaseLost(f"job {job_name}: now held by {holder or 'nobody'}")
        return job

    async def _observe(
        self,
        s: AsyncSession,
        cloud: str,
        part: Sequence[RemoteServer],
        adopting: set[str],
        started: datetime,
    ) -> tuple[list[str], bool]:
        """Apply one slice of listed servers to their rows, locked; return leaks and
        whether a failed boot now waits for provisioning."""
        rt = self.rt
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
        rescheduled = False
        for r in part:
            row = rows.get(r.canopy_id) if r.canopy_id else None
            if row is None:
                continue  # busy elsewhere (or gone since the read): next pass
            if r.state == RemoteState.DELETED:
                if row.cloud == cloud and row.remote_id == r.remote_id:
                    await self._gone(s, row, started)
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
                changed = apply_observation(
                    row, r.state, started, fault=r.fault, addresses=r.addresses
                )
                if changed == "active":  # booted: learn the cloud's boot time
                    rt.boots.saw_boot(cloud, row, r, started, self._last_pass.get(cloud))
                server_observed(s, row, changed, now)
                if changed:
                    row.updated_at = now
                rescheduled |= row.phase == Phase.RESCHEDULE
        return leaks, rescheduled

    async def _interval(self, s: AsyncSession, cloud: str) -> float:
        """Seconds to the next pass: shorter while servers on `cloud` are converging."""
        c = self.rt.settings.controllers
        if (await s.execute(converging(cloud))).first() is None:
            return c.sync_seconds
        return min(c.sync_seconds, c.sync_converging_seconds)

    async def _gone(self, s: AsyncSession, row: Server, started: datetime) -> None:
        """The cloud no longer has this server."""
        await server_gone(s, row, started, self.rt.clock.now())
