"""Sync, per cloud: observe, adopt, collect leaks, and notice servers deleted behind our back.

One worker at a time runs a cloud's sync, through a lease on its `jobs` row; its cloud calls
(each page of the list, the deletes of leaks) are fenced on that lease like any step's.
Each pass lists the cloud's canopy-tagged servers (changes since the last pass, with an
overlap; everything every `full_sync_seconds`, or every pass on a cloud without
changes-since: controllers/sync_full.py), a page at a time, and reconciles each
page with the rows before it asks for the next (controllers/sync_pages.py):

- a remote server whose row is gone, deleted, or placed on another cloud is a leak: delete it;
- a remote server whose row has no remote id yet (a crash after create) is adopted;
- a row whose remote server has disappeared was deleted out of band: ERROR with a fault, or
  simply deleted if that is what the user wanted.

A remote server without a canopy id is not canopy's and is never touched, whatever a
driver's list returns: sync deletes only what canopy created. Nor is one tagged by another
installation (sharing the account); and a server with no row is a leak only if it carries
this installation's tag (controllers/sync_read.py). A healing pass also asks the
cloud for its zones, and every pass records the driver's abilities, on the cloud's row,
where placement and the API read them (the API never calls a cloud). A pass whose list
succeeds marks the cloud healthy: it is the probe that ends an outage, credentials refused
included (controllers/health.py).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.controllers.boot_times import looks_after_pass
from canopy.controllers.fencing import Hold, LeaseLost
from canopy.controllers.health import ability_map, sync_failed
from canopy.controllers.runtime import Runtime
from canopy.controllers.sync_digest import (
    Digest,
    active_remote_ids,
    alive_ids,
    missing_among,
    release,
)
from canopy.controllers.sync_full import heal_due, lists_changes
from canopy.controllers.sync_gone import rows_gone
from canopy.controllers.sync_observe import observe
from canopy.controllers.sync_pages import Pages
from canopy.controllers.sync_read import compare, missing, slices
from canopy.controllers.sync_record import Outcome, record_pass
from canopy.controllers.sync_schedule import SyncSchedule
from canopy.controllers.sync_turns import deep_pass, end_pass, turn
from canopy.domain.errors import CloudError
from canopy.domain.specs import RemoteServer
from canopy.store.leases import When, lease_job, release_lease
from canopy.store.models import Job
from canopy.telemetry import CONTROLLER_STEPS

log = logging.getLogger("canopy.sync")


class SyncController(SyncSchedule):
    """Runs the due sync jobs of every cloud this worker has a driver for."""

    def __init__(self, rt: Runtime) -> None:
        super().__init__(rt)
        # Each cloud's digest of unchanged servers (controllers/sync_digest.py).
        self._digests: dict[str, Digest] = {}
        # When each cloud's last healing pass began (controllers/sync_full.py).
        self._healed: dict[str, datetime] = {}

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
        full, since, heal = lease
        self._not_before[cloud] = now + timedelta(seconds=rt.settings.controllers.sync_seconds)
        hold = keeper.hold(name, renewed=sent, at=lease_now)
        try:
            await self._pass(cloud, name, hold, since, full, heal)
        except LeaseLost as e:
            log.warning("sync %s: pass abandoned: %s", cloud, e)
            CONTROLLER_STEPS.labels(controller="sync", outcome="lease_lost").inc()
        finally:
            keeper.drop(hold)
        return True

    async def _lease(
        self, cloud: str, name: str, now: datetime, *, force: bool, hurried: bool
    ) -> tuple[tuple[bool, datetime | None, bool] | None, When]:
        """Lease the cloud's sync job: ((full listing?, since, healing listing?), the lease
        clock's reading); None if another worker holds it or it is not due after all."""
        rt = self.rt
        # Used (or not needed): the lease reads the job.
        remembered = self._recorded.pop(cloud, None) is not None
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
                elif remembered:
                    # Due by this worker's memory, but another worker ran it since or holds
                    # it: `_due` reads when it is next due, or whose lease to wait out.
                    self._not_before.pop(cloud, None)
                else:  # held elsewhere or not due after all: `_due` reads it again then
                    self._not_before[cloud] = now + timedelta(
                        seconds=rt.settings.controllers.sync_seconds
                    )
                return None, lease_now
            self._held_off.pop(cloud, None)
            if hurried:
                self.rt.sync_soon.served(cloud, now)  # later asks, or set meanwhile, stay
            heal = self._heal_due(cloud, job, now)
            full = heal or not lists_changes(rt.driver(cloud))
            since = None if full else job.cursor
        return (full, since, heal), lease_now

    async def _pass(
        self, cloud: str, name: str, hold: Hold, since: datetime | None, full: bool, heal: bool
    ) -> None:
        """List, reconcile and delete leaks, every call fenced on the job's lease."""
        rt = self.rt
        driver = rt.driver(cloud)
        started = rt.clock.now()
        zones: list[str] | None = None
        try:
            if heal:
                zones = await rt.call(cloud, "zones", driver.zones, hold=hold)
            pages = Pages(rt, cloud, hold, since)
            first = await pages.next()
            leaks = await self._reconcile(
                cloud, name, pages, first, started, full, zones, heal=heal
            )
        except CloudError as e:  # a page's call failed: the pass records nothing
            async with rt.db_slot:
                await sync_failed(rt, cloud, name, e)
            return
        if not leaks:
            return  # the job's lease was released with the pass's results
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

    async def _reconcile(
        self,
        cloud: str,
        job_name: str,
        pages: Pages,
        page: list[RemoteServer] | None,
        started: datetime,
        full: bool,
        zones: list[str] | None = None,
        *,
        heal: bool | None = None,
    ) -> list[str]:
        """Record what the listing changed; return the remote ids of leaks to delete.

        The listing arrives a page at a time (controllers/sync_pages.py), each page
        compared without locks, a slice at a time (controllers/sync_read.py); the rows it
        changes are then locked and written a slice per transaction, each checking that
        this worker still holds the job. The page is then let go and the next one asked
        for. The rows whose servers a full listing no longer shows come after its last
        page, and the pass is recorded last. A crash or a lost lease between slices or
        pages loses nothing: the job's cursor has not moved, so the next pass lists the
        same changes again.
        """
        rt = self.rt
        heal = full if heal is None else heal
        if full or page:  # nothing to compare (at rest): the results' write checks it
            async with rt.db_slot:
                await self._held(job_name)  # no point comparing for a job another worker has
        digest, deep = self._digest(cloud, full, heal)
        marked = deep_pass(deep)  # a deep pass's slices let the API go first
        try:
            async with rt.db_slot:  # read once per worker, then remembered
                inst = await rt.installation_id()
            # Unchanged servers with settled rows are not read (controllers/sync_digest.py);
            # nor are the under-way rows until a page lists something (at rest, nothing).
            active: set[str] | None = None
            leaks: list[str] = []
            alive: set[str] = set()  # a full listing's live remote ids, page after page
            rescheduled = False
            while page is not None:
                if active is None and (full or page):
                    async with rt.db_slot:
                        seen = digest.seen
                        active = await active_remote_ids(rt.db, cloud) if seen else set()
                async with rt.db_slot:  # the page's transactions; not the page's call
                    more, resched = await self._reconcile_page(
                        cloud, job_name, page, started, inst, digest, deep, active or set()
                    )
                leaks += more
                rescheduled |= resched
                if full:
                    alive |= await alive_ids(page)
                await release(page)  # let go, a chunk at a time, before the next page
                page = await pages.next()
            if full:
                # Rows whose server the full list no longer shows were deleted behind our back.
                if deep:
                    async with rt.db_slot:
                        gone = await missing(rt.db, cloud, alive, started)
                else:
                    absent = await digest.absent(alive) | ((active or set()) - alive)
                    digest.forget(absent)
                    async with rt.db_slot:
                        gone = await missing_among(rt.db, cloud, absent, started)
                await self._all_gone(job_name, cloud, gone, alive, started, pages)
        except BaseException:
            self._digests.pop(cloud, None)  # maybe half-built: the next full pass is deep
            raise
        finally:
            end_pass(marked)
        if deep:
            digest.complete, digest.since_deep = True, 0
        elif heal:
            digest.since_deep += 1
        now = rt.clock.now()
        overlap = timedelta(seconds=rt.settings.controllers.sync_overlap_seconds)
        c = rt.settings.controllers
        outcome = Outcome(
            job=job_name,
            worker=rt.worker_id,
            cloud=cloud,
            cursor=started - overlap,
            now=now,
            zones=zones,
            lacking=ability_map(rt.driver(cloud)),
            release=not leaks,
        )
        async with rt.db_slot, rt.db.session() as s:
            next_at, interval = await record_pass(
                s, outcome, (c.sync_seconds, c.sync_converging_seconds)
            )
        self._recorded[cloud] = next_at
        self._not_before[cloud] = next_at
        self._last_pass[cloud] = started
        if heal:
            self._healed[cloud] = started
        if interval < rt.settings.controllers.sync_seconds:  # something still converges
            async with rt.db_slot:
                await self._look_again(cloud, started)
        if rescheduled:
            rt.notify("provisioning")  # committed: a failed boot is to be cleaned up
        return list(dict.fromkeys(leaks))  # a server on two pages is one leak

    async def _reconcile_page(
        self,
        cloud: str,
        job_name: str,
        page: list[RemoteServer],
        started: datetime,
        inst: str | None,
        digest: Digest,
        deep: bool,
        active: set[str],
    ) -> tuple[list[str], bool]:
        """One page of the listing compared, then its busy servers observed under lock:
        its leaks, and whether a failed boot now waits for provisioning."""
        rt = self.rt
        listed = page if deep else await digest.changed(page, active)
        seen = await compare(rt.db, cloud, listed, started, inst, digest)
        leaks = seen.leaks
        rescheduled = False
        for part in slices(seen.busy, writes=True):
            # The turn first, then the write lock (controllers/sync_turns.py).
            async with turn(), rt.db.session() as s:
                await self._held(job_name, s)
                last = self._last_pass.get(cloud)
                done = await observe(rt, s, cloud, part, seen.adopting, started, last)
            leaks += done.leaks
            rescheduled |= done.rescheduled
            if done.answered:  # committed: a stack waiting on these servers steps now
                rt.notify("orchestration")
        return leaks, rescheduled

    async def _look_again(self, cloud: str, started: datetime) -> None:
        """Boots this pass should have seen (their last look was before it) and did not:
        look for them again soon; boots still to end whose creates asked for no look (the
        boot time was not known then): look when they are expected to end
        (controllers/boot_times.py)."""
        rt = self.rt
        looks = await rt.boots.looks(rt.db, cloud, at=rt.clock.now())
        if looks:
            unasked = rt.boots.known_since(cloud)
            for at in await looks_after_pass(rt.db, cloud, started, looks, unasked):
                rt.sync_soon.ask(cloud, at)

    def _digest(self, cloud: str, full: bool, heal: bool) -> tuple[Digest, bool]:
        """The cloud's digest, and whether this pass is a deep one (which rebuilds it):
        one healing pass in `sync_deep_every` is (controllers/sync_full.py)."""
        digest = self._digests.get(cloud)
        if digest is None or (
            heal and digest.deep_due(self.rt.settings.controllers.sync_deep_every)
        ):
            digest = self._digests[cloud] = Digest()
        return digest, full and not digest.complete

    async def _all_gone(
        self,
        job_name: str,
        cloud: str,
        ids: list[str],
        alive: set[str],
        started: datetime,
        pages: Pages,
    ) -> None:
        """Rows `ids` lost their servers (not in `alive`): checked again under lock, and,
        after a listing of several pages, with the cloud (controllers/sync_pages.py)."""
        for part in slices(ids, writes=True):
            if pages.count > 1:
                alive |= await pages.still_there(part)
            # The slot before the turn, as every pass takes them (a pass holding a slot
            # waits for the turn inside it): the other order deadlocks.
            async with self.rt.db_slot, turn(), self.rt.db.session() as s:
                await self._held(job_name, s)
                await rows_gone(s, cloud, part, alive, started, self.rt.clock.now())

    def _heal_due(self, cloud: str, job: Job, now: datetime) -> bool:
        """Whether this pass of `cloud` is a healing one (controllers/sync_full.py)."""
        return heal_due(self.rt.settings.controllers, job, self._healed.get(cloud), now)

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
