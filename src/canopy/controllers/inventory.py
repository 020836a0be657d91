"""Inventory, per cloud: what the cloud can take and which of its sizes each flavor gets.

A periodic job per cloud (`inventory:{cloud}`, on the job leases like sync), fenced on its
lease. Each pass asks the driver for its capacity and its offerings and writes, in one
transaction:

- the cloud's capacity (`*_capacity`, `capacity_updated_at`: a cloud never inventoried is
  not placeable, and placement says so): canopy's share of it, the cloud's total less what
  servers canopy did not create use there (`*_others`, domain/share.py); canopy's own
  servers the cloud surely counts, and those it may not count yet, from their claims
  (store.own_usage.own_on_cloud);
- one flavor mapping per canopy flavor the cloud can run: the explicit `flavor_map`
  entry, else the cheapest offering that fits (vcpus and RAM at least the flavor's; local
  disk too when the offering has any, since a block-storage root is sized at boot); a
  driver that takes any size (`SizedByRequest`) runs every flavor under its own name at
  its own price. A flavor nothing fits loses its mapping: placement says it is not offered;
- whether the cloud boots canopy image ids without a mapping (`boots_any_image`);
- the physical hosts of a cloud with the `hosts` ability (`clouds.hosts`, what Blazar's
  os-hosts registers; null for a cloud without it) and what the driver cannot do.

A worker runs every cloud's inventory once before its other loops start, so the mappings
are there before the first placement; then again every `inventory_seconds`. A job another
worker holds is looked at again when that lease could have run out: a worker killed in
the middle of a pass leaves a cloud that may never have been read (and is not placeable
until it is) for the next worker to read within a lease, not an idle minute later.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from canopy.controllers.fencing import Hold, LeaseLost
from canopy.controllers.health import ability_map
from canopy.controllers.runtime import Runtime
from canopy.domain.errors import CloudError
from canopy.domain.money import to_micros
from canopy.domain.share import Use, shares
from canopy.domain.specs import Capacity, Offering
from canopy.domain.states import Ability
from canopy.providers.base import (
    HostInfo,
    HostLister,
    SizedByRequest,
    boots_any_image,
    sized_by_request,
)
from canopy.store.claims import Usage
from canopy.store.leases import lease_job, live, release_lease
from canopy.store.models import Cloud, Flavor, FlavorMapping, Job
from canopy.store.own_usage import own_on_cloud

log = logging.getLogger("canopy.inventory")


@dataclass(frozen=True, slots=True)
class Mapped:
    """Where one canopy flavor goes on a cloud, and what it costs there per hour."""

    remote_flavor: str
    price_per_hour: float


def fits(offering: Offering, vcpus: int, ram_mb: int, disk_gb: int) -> bool:
    """Whether `offering` can run a flavor of this size."""
    if offering.vcpus < vcpus or offering.ram_mb < ram_mb:
        return False
    return offering.disk_gb == 0 or offering.disk_gb >= disk_gb


def map_flavors(
    flavors: Sequence[Flavor],
    offerings: Sequence[Offering],
    flavor_map: Mapping[str, str],
    sized: SizedByRequest | None,
) -> dict[str, Mapped]:
    """Canopy flavor id -> where it goes on one cloud (absent: the cloud cannot run it)."""
    by_name = {o.name: o for o in offerings}
    cheapest = sorted(offerings, key=lambda o: (o.price_per_hour, o.vcpus, o.ram_mb, o.name))
    out: dict[str, Mapped] = {}
    for f in flavors:
        remote = flavor_map.get(f.name)
        if remote is not None:
            if remote in by_name:
                price = by_name[remote].price_per_hour
            elif sized is not None:
                price = sized.price_per_hour(f.vcpus, f.ram_mb)
            else:
                log.warning("flavor %s maps to %s, which the cloud does not price", f.name, remote)
                price = 0.0
            out[f.id] = Mapped(remote, price)
        elif sized is not None:
            out[f.id] = Mapped(f.name, sized.price_per_hour(f.vcpus, f.ram_mb))
        else:
            best = next((o for o in cheapest if fits(o, f.vcpus, f.ram_mb, f.disk_gb)), None)
            if best is not None:
                out[f.id] = Mapped(best.name, best.price_per_hour)
    return out


def _use(u: Usage) -> Use:
    return Use(u.vcpus, u.ram_mb, u.instances)


class InventoryController:
    """Runs the due inventory jobs of every cloud this worker has a driver for."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        # Clouds this worker left to another worker's lease, and when to look again: when
        # that lease could have run out.
        self._look_again: dict[str, datetime] = {}
        # Clouds a pass of this worker is reading, from just before its lease to its
        # record. A second pass (the clouds loop's forced read beside the inventory
        # loop's) leaves them be and never writes the job: leasing it again would set
        # `next_run_at` over a flavor's "run again" (NULL) written since the first leased.
        self._reading: set[str] = set()

    @property
    def idle(self) -> float:
        """How long the worker's loop may sleep between looks."""
        return min(60.0, self.rt.settings.controllers.inventory_seconds)

    def next_due_in(self, now: datetime) -> float | None:
        """Seconds until a cloud left to another worker's lease may be read (None: none).

        A worker that dies during a pass holds the job until its lease runs out; the cloud
        it was reading may never have been read (a new install, a new cloud), and is not
        placeable until it is. The next look is then at most a lease later, not a whole
        idle period (a minute). A job that is merely not due yet is left to the idle loop,
        as before: a cloud whose pass failed is due again after `sync_seconds`, and
        waking for it would ask a failing cloud every few seconds."""
        if not self._look_again:
            return None
        return max(0.0, min((at - now).total_seconds() for at in self._look_again.values()))

    def _held_elsewhere(self, cloud: str, now: datetime) -> None:
        """Another worker holds `cloud`'s job: look again when its lease could have run
        out (or at the idle period, if that comes first)."""
        lease = self.rt.settings.controllers.lease_seconds
        self._look_again[cloud] = now + timedelta(seconds=min(lease, self.idle))

    async def run_once(self, *, force: bool = False) -> int:
        """One pass over every due cloud (all of them with `force`); how many were read.

        Every cloud's pass at once, so their calls to the clouds overlap; their
        transactions take turns on `Runtime.db_slot`, so 500 clouds do not ask the pool for
        500 connections (it times out, and leases waiting on it are lost).
        """
        for gone in [c for c in self._look_again if c not in self.rt.drivers]:
            del self._look_again[gone]  # removed from the fleet: nothing to look at
        done = await asyncio.gather(
            *(self.inventory_cloud(c, force=force) for c in sorted(self.rt.drivers))
        )
        return sum(done)

    async def inventory_cloud(self, cloud: str, *, force: bool = False) -> bool:
        rt = self.rt
        now = rt.clock.now()
        name = f"inventory:{cloud}"
        if cloud in self._reading:
            self._look_again.pop(cloud, None)  # a pass here is reading it: it sets the next
            return False
        async with rt.db_slot, rt.db.read() as s:
            row = (
                await s.execute(
                    select(Job.next_run_at, Job.claimed_by, live(Job, rt.lease_now())).where(
                        Job.name == name
                    )
                )
            ).one_or_none()
        if row is not None:
            next_run, holder, held = row
            if held and holder != rt.worker_id:
                self._held_elsewhere(cloud, now)
                return False
            if not force and next_run is not None and next_run > now:
                self._look_again.pop(cloud, None)  # not due: the idle loop's to look at
                return False
        # Checked again after the read: another pass of this worker (a forced one beside
        # the loop's) may have gone on to lease meanwhile. Nothing awaits between the
        # check and the add, and only a pass that will lease is in `_reading`: a pass
        # that finds the job not due never keeps a forced one out.
        if cloud in self._reading:
            self._look_again.pop(cloud, None)
            return False
        self._reading.add(cloud)
        try:
            return await self._lease_and_read(cloud, name, now, force=force)
        finally:
            self._reading.discard(cloud)

    async def _lease_and_read(self, cloud: str, name: str, now: datetime, *, force: bool) -> bool:
        rt = self.rt
        keeper = rt.leases(Job)
        async with rt.db_slot:  # waits here for a connection, before `sent`: see Hold
            sent = asyncio.get_running_loop().time()
            async with rt.db.session() as s:
                lease_now = rt.lease_now()
                job = await lease_job(
                    s,
                    name=name,
                    worker=rt.worker_id,
                    now=now,
                    lease_seconds=rt.lease_seconds,
                    lease_now=lease_now,
                    force=force,
                )
                if job is None:  # taken by another worker meanwhile
                    self._held_elsewhere(cloud, now)
                    return False
                # A flavor created from here on clears `next_run_at` (services/flavors.py);
                # the pass then leaves the job due, for it may not have seen the flavor.
                job.next_run_at = now
        self._look_again.pop(cloud, None)  # this pass sets the job's next run
        hold = keeper.hold(name, renewed=sent, at=lease_now)
        try:
            await self._pass(cloud, name, hold, now)
        except LeaseLost as e:
            log.warning("inventory %s: pass abandoned: %s", cloud, e)
        finally:
            keeper.drop(hold)
        return True

    async def _pass(self, cloud: str, name: str, hold: Hold, started: datetime) -> None:
        rt = self.rt
        driver = rt.driver(cloud)
        sized = sized_by_request(driver)
        try:
            capacity = await rt.call(cloud, "capacity", driver.capacity, hold=hold)
            offerings = (
                []
                if sized is not None
                else await rt.call(cloud, "offerings", driver.offerings, hold=hold)
            )
            hosts: list[HostInfo] | None = None
            if isinstance(driver, HostLister) and driver.abilities.has(Ability.HOSTS):
                hosts = await rt.call(cloud, "hosts", driver.hosts, hold=hold)
        except CloudError as e:
            await self._failed(cloud, name, e)
            return
        await self._record(
            cloud, name, started, capacity, offerings, sized, boots_any_image(driver)
        )
        await self._record_hosts(cloud, hosts, ability_map(driver))

    async def _record_hosts(
        self, cloud: str, hosts: list[HostInfo] | None, lacking: dict[str, str]
    ) -> None:
        """The cloud's hosts and missing abilities on its row, if they changed."""
        listed = None if hosts is None else [asdict(h) for h in hosts]
        async with self.rt.db_slot, self.rt.db.session() as s:
            row = await s.get(Cloud, cloud, with_for_update=True)
            if row is not None and (row.hosts != listed or (row.abilities or {}) != lacking):
                row.hosts = listed
                row.abilities = lacking

    async def _record(
        self,
        cloud: str,
        name: str,
        started: datetime,
        capacity: Capacity,
        offerings: list[Offering],
        sized: SizedByRequest | None,
        any_image: bool,
    ) -> None:
        """Write the pass's results. `capacity_updated_at` is when the pass took its lease:
        every flavor created before then is in the flavors read here (see
        services/flavors.py), which is what placement relies on to tell a flavor not yet
        inventoried from one the cloud cannot run."""
        rt = self.rt
        now = rt.clock.now()
        async with rt.db_slot:
            async with rt.db.read() as s:
                # Booted before the pass began: before the cloud was asked for its capacity.
                own, unsure = await own_on_cloud(s, cloud, started)
            await self._write(
                cloud, name, now, started, capacity, offerings, sized, any_image, own, unsure
            )
        rt.notify("placement")  # committed: servers waiting for this cloud may fit now

    async def _write(
        self,
        cloud: str,
        name: str,
        now: datetime,
        started: datetime,
        capacity: Capacity,
        offerings: list[Offering],
        sized: SizedByRequest | None,
        any_image: bool,
        own: Usage,
        unsure: Usage,
    ) -> None:
        rt = self.rt
        config = rt.cloud_configs.get(cloud)
        flavor_map = {} if config is None else config.merged_flavor_map()
        async with rt.db.session() as s:
            job = await s.get(Job, name, with_for_update=True)
            if job is None or job.claimed_by != rt.worker_id:
                holder = job.claimed_by if job else None
                raise LeaseLost(f"job {name}: now held by {holder or 'nobody'}")
            row = await s.get(Cloud, cloud, with_for_update=True)
            if row is not None:
                was = Use(row.vcpus_others, row.ram_mb_others, row.instances_others)
                share = shares(capacity, _use(own), _use(unsure), was)
                row.vcpus_capacity, row.vcpus_others = share.vcpus.canopy, share.vcpus.others
                row.ram_mb_capacity, row.ram_mb_others = share.ram_mb.canopy, share.ram_mb.others
                row.instances_capacity = share.instances.canopy
                row.instances_others = share.instances.others
                row.capacity_updated_at = started
                row.any_image = any_image
                flavors = list((await s.execute(select(Flavor))).scalars())
                mapped = map_flavors(flavors, offerings, flavor_map, sized)
                existing = {
                    m.flavor_id: m
                    for m in (
                        await s.execute(select(FlavorMapping).where(FlavorMapping.cloud == cloud))
                    ).scalars()
                }
                for fid, m in mapped.items():
                    price = to_micros(m.price_per_hour)
                    have = existing.pop(fid, None)
                    if have is None:
                        s.add(
                            FlavorMapping(
                                cloud=cloud,
                                flavor_id=fid,
                                remote_flavor=m.remote_flavor,
                                price_per_hour_micros=price,
                            )
                        )
                    elif (have.remote_flavor, have.price_per_hour_micros) != (
                        m.remote_flavor,
                        price,
                    ):
                        have.remote_flavor, have.price_per_hour_micros = m.remote_flavor, price
                if existing:  # flavors the cloud can no longer run
                    await s.execute(
                        delete(FlavorMapping).where(
                            FlavorMapping.cloud == cloud,
                            FlavorMapping.flavor_id.in_(list(existing)),
                        )
                    )
            job.runs += 1
            job.last_run_at = now
            job.last_error = None
            if job.next_run_at is not None:  # else a flavor was created meanwhile: run again
                job.next_run_at = now + timedelta(seconds=rt.settings.controllers.inventory_seconds)
            job.claimed_by = None
            job.claim_expires_at = None

    async def _failed(self, cloud: str, name: str, err: CloudError) -> None:
        """Try again soon (a sync interval); the last good inventory stays in force."""
        rt = self.rt
        now = rt.clock.now()
        log.warning("inventory %s failed: %s", cloud, err)
        async with rt.db_slot, rt.db.session() as s:
            job = await s.get(Job, name, with_for_update=True)
            if job is not None and job.claimed_by == rt.worker_id:
                job.last_error = str(err)
                if job.next_run_at is not None:  # else due at once: a flavor is new
                    job.next_run_at = now + timedelta(seconds=rt.settings.controllers.sync_seconds)
            await release_lease(s, Job, name, rt.worker_id)
