"""Creating a lease: every reservation placed over the window and its capacity held, all
or nothing, in the caller's transaction."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from canopy.config import Settings
from canopy.domain.context import RequestContext
from canopy.notifications import events
from canopy.notifications.outbox import lease_changed
from canopy.reservations import capacity, host_leases, ready, requests
from canopy.reservations.flavors import add_flavor, flavor_name
from canopy.reservations.lease_events import add_events
from canopy.reservations.lease_reads import name_free
from canopy.reservations.states import PHYSICAL_HOST, LeaseStatus, ReservationStatus
from canopy.store.models import Lease, Reservation


async def create_lease(
    s: AsyncSession, settings: Settings, ctx: RequestContext, body: object, now: datetime
) -> Lease:
    """Validate, place every reservation over the window and claim it; all or nothing."""
    req = requests.lease_create(body, now)
    await name_free(s, ctx.project_id, req.name)
    clouds = await capacity.lock_clouds(s)
    lease = Lease(
        id=str(uuid.uuid4()),
        project_id=ctx.project_id,
        user_id=ctx.user_id,
        name=req.name,
        start_at=req.start,
        end_at=req.end,
        status=LeaseStatus.PENDING,
        degraded=False,
        created_at=now,
        updated_at=now,
        next_attempt_at=req.start,
        retries=0,
    )
    s.add(lease)
    await s.flush()
    lease_id = lease.id
    rids: list[str] = []
    for r in req.reservations:
        rid = str(uuid.uuid4())
        rids.append(rid)
        if r.resource_type == PHYSICAL_HOST:
            await _hold_hosts(s, lease_id, rid, r, req.start, req.end, now)
            continue
        size, source = await _size(s, r, rid)
        offered = await capacity.offers(s, size, source)
        snaps = await capacity.window_snapshots(s, clouds, req.start, req.end, now, size, offered)
        shares = capacity.place(snaps, size, r.amount, r.affinity, settings, rid)
        await capacity.hold(
            s,
            clouds,
            shares,
            size,
            offered,
            reservation_id=rid,
            start=req.start,
            end=req.end,
            now=now,
        )
        await add_flavor(s, rid, size, {sh.cloud: offered[sh.cloud] for sh in shares}, now)
        s.add(
            Reservation(
                id=rid,
                lease_id=lease_id,
                resource_type=r.resource_type,
                status=ReservationStatus.PENDING,
                amount=r.amount,
                vcpus=size.vcpus,
                memory_mb=size.ram_mb,
                disk_gb=size.disk_gb,
                affinity=r.affinity,
                resource_properties=r.resource_properties,
                source_flavor_id=source,
                placement=[
                    {
                        "cloud": sh.cloud,
                        "amount": sh.amount,
                        "reason": sh.reason,
                        "price_per_hour_micros": offered[sh.cloud].price_per_hour_micros,
                    }
                    for sh in shares
                ],
                missing_resources=False,
                resources_changed=False,
                created_at=now,
                updated_at=now,
            )
        )
        await s.flush()  # the next reservation's peak sees these claims
    await ready.carry(s, settings, ctx, lease, req.servers, rids, now)
    if lease.boot_at is not None:
        lease.next_attempt_at = min(req.start, lease.boot_at)
    add_events(s, lease_id, req.start, req.end, req.before_end, now)
    await s.flush()
    lease_changed(s, events.LEASE_CREATE, lease, now)
    return lease


async def _hold_hosts(
    s: AsyncSession,
    lease_id: str,
    rid: str,
    r: requests.ReservationRequest,
    start: datetime,
    end: datetime,
    now: datetime,
) -> None:
    """A physical:host reservation: its hosts, held over the window (no claim: a
    registered host's capacity is held by its own claim, see host_leases)."""
    s.add(
        Reservation(
            id=rid,
            lease_id=lease_id,
            resource_type=r.resource_type,
            status=ReservationStatus.PENDING,
            amount=0,
            vcpus=0,
            memory_mb=0,
            disk_gb=0,
            affinity=None,
            resource_properties=r.resource_properties,
            min_hosts=r.min_hosts,
            max_hosts=r.max_hosts,
            hypervisor_properties=r.hypervisor_properties,
            before_end=r.before_end,
            source_flavor_id=None,
            placement=[],
            missing_resources=False,
            resources_changed=False,
            created_at=now,
            updated_at=now,
        )
    )
    await s.flush()
    held = await host_leases.allocate(
        s,
        reservation_id=rid,
        query=r.host_query,
        min_hosts=r.min_hosts,
        max_hosts=r.max_hosts,
        start=start,
        end=end,
        now=now,
    )
    res = await s.get(Reservation, rid)
    assert res is not None
    host_leases.summarize(res, held)


async def _size(
    s: AsyncSession, r: requests.ReservationRequest, rid: str
) -> tuple[capacity.Size, str | None]:
    """The size of an instance reservation's servers, and the public flavor it came from
    (None for virtual:instance, which names its size)."""
    if r.flavor is None:
        return capacity.Size(flavor_name(rid), r.vcpus, r.memory_mb, r.disk_gb), None
    f = await capacity.public_flavor(s, r.flavor)
    return capacity.Size(flavor_name(rid), f.vcpus, f.ram_mb, f.disk_gb), f.id
