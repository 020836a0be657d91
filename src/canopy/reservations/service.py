"""Leases: create (placed and claimed at once), update, delete and read, in the caller's
transaction (an API request's unit of work).

The work is in `lease_reads`, `lease_create`, `lease_update` and `lease_events`; this is
the one object the API and the tests hold, with the settings, the clock and the server
service those need.
"""

from __future__ import annotations

import builtins

from sqlalchemy.ext.asyncio import AsyncSession

from canopy.config import Settings
from canopy.domain.clock import Clock
from canopy.domain.context import RequestContext
from canopy.notifications import events
from canopy.notifications.outbox import lease_changed
from canopy.reservations import capacity, lifecycle
from canopy.reservations.lease_create import create_lease
from canopy.reservations.lease_events import default_before_end
from canopy.reservations.lease_reads import get_lease, lease_details, list_leases
from canopy.reservations.lease_update import LIVE, update_lease
from canopy.services.servers import ServerService
from canopy.store.models import Lease, LeaseEvent, Reservation

__all__ = ["LIVE", "LeaseService", "default_before_end"]


class LeaseService:
    def __init__(self, settings: Settings, clock: Clock, servers: ServerService) -> None:
        self.settings = settings
        self.clock = clock
        self.servers = servers

    async def get(
        self, s: AsyncSession, ctx: RequestContext, lease_id: str, *, lock: bool = False
    ) -> Lease:
        return await get_lease(s, ctx, lease_id, lock=lock)

    async def list(self, s: AsyncSession, ctx: RequestContext) -> builtins.list[Lease]:
        return await list_leases(s, ctx)

    async def details(
        self, s: AsyncSession, lease_ids: builtins.list[str]
    ) -> tuple[dict[str, builtins.list[Reservation]], dict[str, builtins.list[LeaseEvent]]]:
        return await lease_details(s, lease_ids)

    async def create(self, s: AsyncSession, ctx: RequestContext, body: object) -> Lease:
        """Validate, place every reservation over the window and claim it; all or nothing."""
        return await create_lease(s, self.settings, ctx, body, self.clock.now())

    async def update(
        self, s: AsyncSession, ctx: RequestContext, lease_id: str, body: object
    ) -> Lease:
        """Rename, move the window, change amounts, sizes or host bounds (see
        `lease_update`); what does not fit is a 409 and nothing changes."""
        now = self.clock.now()
        lease = await get_lease(s, ctx, lease_id, lock=True)
        return await update_lease(s, self.settings, lease, body, now)

    async def delete(self, s: AsyncSession, ctx: RequestContext, lease_id: str) -> None:
        """Delete the lease: its servers are deleted, its capacity released."""
        now = self.clock.now()
        lease = await get_lease(s, ctx, lease_id, lock=True)
        reservations = await lifecycle.reservations_of(s, lease.id)
        await capacity.lock_clouds(s)
        await lifecycle.release(s, lease, reservations, self.servers, now)
        lease_changed(s, events.LEASE_DELETE, lease, now)
        await s.delete(lease)
        await s.flush()
