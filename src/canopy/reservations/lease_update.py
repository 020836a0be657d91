"""Changing a lease: rename, move the window, change amounts or sizes (`resize`) or a host
reservation's bounds and queries (`host_update`), in the caller's transaction.

A moved window keeps the capacity on its clouds (hosts: see `host_update`); what does not
fit is a 409 and nothing changes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from canopy.config import Settings
from canopy.domain.errors import Conflict, InvalidRequest
from canopy.notifications import events
from canopy.notifications.outbox import lease_changed
from canopy.reservations import (
    capacity,
    changes,
    host_update,
    lifecycle,
    ready,
    requests,
    resize,
)
from canopy.reservations.flavors import flavor_name
from canopy.reservations.lease_events import retime
from canopy.reservations.lease_reads import name_free
from canopy.reservations.states import PHYSICAL_HOST, LeaseStatus
from canopy.store import claim_counts
from canopy.store.claims import peaks_by_cloud
from canopy.store.models import Claim, Lease

# Statuses in which a lease still has events to run.
LIVE = (LeaseStatus.PENDING, LeaseStatus.ACTIVE)


async def update_lease(
    s: AsyncSession, settings: Settings, lease: Lease, body: object, now: datetime
) -> Lease:
    """Apply an update body to `lease` (already read, locked, for the caller)."""
    up = requests.lease_update(body, now, lease.start_at, lease.end_at)
    asked = changes.parse(requests.lease_object(body).get("reservations"))
    if lease.status not in LIVE:
        raise Conflict(f"Lease {lease.id} has ended ({lease.status}) and cannot be updated.")
    if up.name is not None and up.name != lease.name:
        await name_free(s, lease.project_id, up.name)
        lease.name = up.name
    start = up.start or lease.start_at
    end = up.end or lease.end_at
    if lease.status == LeaseStatus.ACTIVE and start != lease.start_at:
        raise InvalidRequest("Cannot modify the start date of an already started lease.")
    if lease.status == LeaseStatus.ACTIVE and end <= now:
        raise InvalidRequest("The end date of an active lease must be in the future.")
    requests.check_window(
        start, end, up.before_end, now, up.start_is_now or lease.status == LeaseStatus.ACTIVE
    )
    reservations = await lifecycle.reservations_of(s, lease.id)
    wanted = changes.match(asked, reservations)
    before = (lease.start_at, lease.end_at)
    if (start, end) != before:
        await _move(s, lease, start, end, now)
    to_hosts = {c.id: c for c in wanted if c.names_hosts}
    hosts = [r for r in reservations if r.resource_type == PHYSICAL_HOST]
    if hosts and ((start, end) != before or to_hosts):
        await capacity.lock_clouds(s)  # as a create does, before its hosts
        for r in hosts:
            await host_update.apply(s, lease, r, to_hosts.get(r.id), before, now)
    instances = [c for c in wanted if not c.names_hosts]
    await resize.apply(s, settings, lease, reservations, instances, now)
    await retime(s, lease, start, end, up.before_end, now)
    lease.updated_at = now
    lease_changed(s, events.LEASE_UPDATE, lease, now)
    return lease


async def _move(
    s: AsyncSession, lease: Lease, start: datetime, end: datetime, now: datetime
) -> None:
    """Hold the lease's instance capacity over [start, end) on the same clouds, or 409."""
    clouds = await capacity.lock_clouds(s)
    since = max(start, now) if lease.status == LeaseStatus.ACTIVE else start
    reservations = await lifecycle.reservations_of(s, lease.id)
    ids = [r.id for r in reservations]
    await claim_counts.apply(s, await claim_counts.drop(s, Claim.reservation_id.in_(ids)))
    await s.flush()
    for r in reservations:
        if r.resource_type == PHYSICAL_HOST:
            continue  # it holds hosts, no claim: `host_update` moves them
        size = capacity.Size(flavor_name(r.id), r.vcpus, r.memory_mb, r.disk_gb)
        # Every cloud of the reservation in one query; it sees the claims of the
        # reservations before it in this loop (held below), as one query per cloud did.
        # A started lease's past is spent: it must fit from now on (as a resize asks), and
        # a sweep from its start would read every claim placed since (store/claim_sweep.py).
        peaks = await peaks_by_cloud(s, sorted({sh["cloud"] for sh in r.placement}), since, end)
        for share in r.placement:
            cloud = clouds[share["cloud"]]
            peak = peaks[cloud.name]
            n = int(share["amount"])
            short = capacity.shortfall(cloud, peak, size.vcpus, size.ram_mb, n)
            if short is not None:
                free, unit, need = short
                raise Conflict(
                    f"Not enough resources available to move the lease: cloud "
                    f"{cloud.name} has {free} {unit} free over the new "
                    f"window, the reservation needs {need}."
                )
        offered = {
            sh["cloud"]: capacity.Offer("", r.id, int(sh.get("price_per_hour_micros", 0)))
            for sh in r.placement
        }
        shares = [
            capacity.Share(sh["cloud"], int(sh["amount"]), sh["reason"]) for sh in r.placement
        ]
        await capacity.hold(
            s,
            clouds,
            shares,
            size,
            offered,
            reservation_id=r.id,
            start=start,
            end=end,
            now=now,
        )
        await s.flush()
    moved = start != lease.start_at
    lease.start_at, lease.end_at = start, end
    if lease.boot_lead_seconds is not None and lease.status == LeaseStatus.PENDING:
        if lease.booted_at is not None and moved:
            raise Conflict(
                f"Lease {lease.id}'s servers are already booting for its start: "
                "the start can no longer move."
            )
        await ready.schedule_boot(s, lease, now)  # its early claims went with the rest
    await lifecycle.settle(s, reservations, now)
