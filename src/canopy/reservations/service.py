"""Leases: create (placed and claimed at once), update, delete and read, in the caller's
transaction (an API request's unit of work).

A lease is another project's business: a caller sees and changes their own project's
leases, a cloud admin anyone's; any other lease is "not found".
"""

from __future__ import annotations

import builtins
import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.config import Settings
from canopy.domain.clock import Clock
from canopy.domain.context import RequestContext
from canopy.domain.errors import Conflict, InvalidRequest, NotFound
from canopy.notifications import events
from canopy.notifications.outbox import lease_changed
from canopy.reservations import (
    capacity,
    changes,
    host_leases,
    host_update,
    lifecycle,
    ready,
    requests,
    resize,
)
from canopy.reservations.flavors import add_flavor, flavor_name
from canopy.reservations.states import (
    BEFORE_END_DEFAULT_MINUTES,
    PHYSICAL_HOST,
    EventStatus,
    EventType,
    LeaseStatus,
    ReservationStatus,
)
from canopy.services.servers import ServerService
from canopy.store.claims import peaks_by_cloud
from canopy.store.models import Claim, Lease, LeaseEvent, Reservation

# Statuses in which a lease still has events to run.
LIVE = (LeaseStatus.PENDING, LeaseStatus.ACTIVE)


def default_before_end(start: datetime, end: datetime) -> datetime:
    """Blazar's before-end moment: an hour before the end, never before the start."""
    return max(start, end - timedelta(minutes=BEFORE_END_DEFAULT_MINUTES))


class LeaseService:
    def __init__(self, settings: Settings, clock: Clock, servers: ServerService) -> None:
        self.settings = settings
        self.clock = clock
        self.servers = servers

    # Reads ------------------------------------------------------------------------------

    async def get(
        self, s: AsyncSession, ctx: RequestContext, lease_id: str, *, lock: bool = False
    ) -> Lease:
        q = select(Lease).where(Lease.id == lease_id)
        if lock:
            q = q.with_for_update()
        lease = (await s.execute(q)).scalar_one_or_none()
        if lease is None or not (ctx.is_cloud_admin or lease.project_id == ctx.project_id):
            raise NotFound(f"Object with {{'id': '{lease_id[:64]}'}} not found")
        return lease

    async def list(self, s: AsyncSession, ctx: RequestContext) -> list[Lease]:
        q = select(Lease).where(Lease.project_id == ctx.project_id)
        return list((await s.execute(q.order_by(Lease.created_at, Lease.id))).scalars())

    async def details(
        self, s: AsyncSession, lease_ids: builtins.list[str]
    ) -> tuple[dict[str, builtins.list[Reservation]], dict[str, builtins.list[LeaseEvent]]]:
        res: dict[str, builtins.list[Reservation]] = {i: [] for i in lease_ids}
        events: dict[str, builtins.list[LeaseEvent]] = {i: [] for i in lease_ids}
        if lease_ids:
            for r in (
                await s.execute(
                    select(Reservation)
                    .where(Reservation.lease_id.in_(lease_ids))
                    .order_by(Reservation.created_at, Reservation.id)
                )
            ).scalars():
                res[r.lease_id].append(r)
            for e in (
                await s.execute(
                    select(LeaseEvent)
                    .where(LeaseEvent.lease_id.in_(lease_ids))
                    .order_by(LeaseEvent.time, LeaseEvent.id)
                )
            ).scalars():
                events[e.lease_id].append(e)
        return res, events

    # Writes -----------------------------------------------------------------------------

    async def _name_free(self, s: AsyncSession, project_id: str, name: str) -> None:
        taken = await s.scalar(
            select(Lease.id).where(Lease.project_id == project_id, Lease.name == name)
        )
        if taken is not None:
            raise Conflict(f"A lease named {name!r:.80} already exists in this project.")

    async def create(self, s: AsyncSession, ctx: RequestContext, body: object) -> Lease:
        """Validate, place every reservation over the window and claim it; all or nothing."""
        now = self.clock.now()
        req = requests.lease_create(body, now)
        await self._name_free(s, ctx.project_id, req.name)
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
        rids: builtins.list[str] = []
        for r in req.reservations:
            rid = str(uuid.uuid4())
            rids.append(rid)
            if r.resource_type == PHYSICAL_HOST:
                await self._hold_hosts(s, lease_id, rid, r, req.start, req.end, now)
                continue
            size, source = await self._size(s, r, rid)
            offered = await capacity.offers(s, size, source)
            snaps = await capacity.window_snapshots(
                s, clouds, req.start, req.end, now, size, offered
            )
            shares = capacity.place(snaps, size, r.amount, r.affinity, self.settings, rid)
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
        await ready.carry(s, self.settings, ctx, lease, req.servers, rids, now)
        if lease.boot_at is not None:
            lease.next_attempt_at = min(req.start, lease.boot_at)
        before = req.before_end or default_before_end(req.start, req.end)
        for kind, at in (
            (EventType.START, req.start),
            (EventType.BEFORE_END, before),
            (EventType.END, req.end),
        ):
            s.add(
                LeaseEvent(
                    id=str(uuid.uuid4()),
                    lease_id=lease_id,
                    event_type=kind,
                    time=at,
                    status=EventStatus.UNDONE,
                    created_at=now,
                    updated_at=now,
                )
            )
        await s.flush()
        lease_changed(s, events.LEASE_CREATE, lease, now)
        return lease

    async def _hold_hosts(
        self,
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
        self, s: AsyncSession, r: requests.ReservationRequest, rid: str
    ) -> tuple[capacity.Size, str | None]:
        if r.flavor is None:
            return capacity.Size(flavor_name(rid), r.vcpus, r.memory_mb, r.disk_gb), None
        f = await capacity.public_flavor(s, r.flavor)
        return capacity.Size(flavor_name(rid), f.vcpus, f.ram_mb, f.disk_gb), f.id

    async def update(
        self, s: AsyncSession, ctx: RequestContext, lease_id: str, body: object
    ) -> Lease:
        """Rename, move the window, change amounts or sizes (`resize`) or a host
        reservation's bounds and queries (`host_update`). A moved window keeps the capacity
        on its clouds (hosts: see `host_update`); what does not fit is a 409, no change."""
        now = self.clock.now()
        lease = await self.get(s, ctx, lease_id, lock=True)
        up = requests.lease_update(body, now, lease.start_at, lease.end_at)
        asked = changes.parse(requests.lease_object(body).get("reservations"))
        if lease.status not in LIVE:
            raise Conflict(f"Lease {lease.id} has ended ({lease.status}) and cannot be updated.")
        if up.name is not None and up.name != lease.name:
            await self._name_free(s, lease.project_id, up.name)
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
            await self._move(s, lease, start, end, now)
        to_hosts = {c.id: c for c in wanted if c.names_hosts}
        hosts = [r for r in reservations if r.resource_type == PHYSICAL_HOST]
        if hosts and ((start, end) != before or to_hosts):
            await capacity.lock_clouds(s)  # as a create does, before its hosts
            for r in hosts:
                await host_update.apply(s, lease, r, to_hosts.get(r.id), before, now)
        instances = [c for c in wanted if not c.names_hosts]
        await resize.apply(s, self.settings, lease, reservations, instances, now)
        await self._retime(s, lease, start, end, up.before_end, now)
        lease.updated_at = now
        lease_changed(s, events.LEASE_UPDATE, lease, now)
        return lease

    async def _move(
        self, s: AsyncSession, lease: Lease, start: datetime, end: datetime, now: datetime
    ) -> None:
        clouds = await capacity.lock_clouds(s)
        reservations = await lifecycle.reservations_of(s, lease.id)
        ids = [r.id for r in reservations]
        await s.execute(delete(Claim).where(Claim.reservation_id.in_(ids)))
        await s.flush()
        for r in reservations:
            if r.resource_type == PHYSICAL_HOST:
                continue  # it holds hosts, no claim: `host_update` moves them
            size = capacity.Size(flavor_name(r.id), r.vcpus, r.memory_mb, r.disk_gb)
            # Every cloud of the reservation in one query; it sees the claims of the
            # reservations before it in this loop (held below), as one query per cloud did.
            peaks = await peaks_by_cloud(s, sorted({sh["cloud"] for sh in r.placement}), start, end)
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
        await lifecycle.recount_clouds(s, lifecycle.held_clouds(reservations), now)

    async def _retime(
        self,
        s: AsyncSession,
        lease: Lease,
        start: datetime,
        end: datetime,
        before_end: datetime | None,
        now: datetime,
    ) -> None:
        events = list(
            (await s.execute(select(LeaseEvent).where(LeaseEvent.lease_id == lease.id))).scalars()
        )
        before = before_end or default_before_end(start, end)
        times = {EventType.START: start, EventType.BEFORE_END: before, EventType.END: end}
        for e in events:
            if e.status == EventStatus.UNDONE and e.time != times[EventType(e.event_type)]:
                e.time = times[EventType(e.event_type)]
                e.updated_at = now
        pending = [e.time for e in events if e.status == EventStatus.UNDONE]
        if lease.boot_at is not None and lease.booted_at is None:
            pending.append(lease.boot_at)
        lease.next_attempt_at = min(pending) if pending else None

    async def delete(self, s: AsyncSession, ctx: RequestContext, lease_id: str) -> None:
        """Delete the lease: its servers are deleted, its capacity released."""
        now = self.clock.now()
        lease = await self.get(s, ctx, lease_id, lock=True)
        reservations = await lifecycle.reservations_of(s, lease.id)
        await capacity.lock_clouds(s)
        await lifecycle.release(s, lease, reservations, self.servers, now)
        lease_changed(s, events.LEASE_DELETE, lease, now)
        await s.delete(lease)
        await s.flush()
