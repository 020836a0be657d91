"""Leases for reservation tests: a plane with a small private and a large public cloud."""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from canopy.controllers.runtime import Runtime
from canopy.controllers.worker import Worker
from canopy.domain.context import RequestContext
from canopy.reservations.dates import OUTPUT_FORMAT
from canopy.reservations.service import LeaseService
from canopy.store.db import Database
from canopy.store.models import Claim, Lease, LeaseEvent, Reservation
from tests.controllers.harness import Plane

# private: 8 vcpus, 16 GB; public: priced, large, 2 servers' worth of spend cap.
CLOUDS = """
[scheduler]
burst_threshold = 1.0

[[clouds]]
name = "private"
tier = 0
[clouds.sim]
hosts = 1
host_vcpus = 8
host_ram_mb = 16384
boot_seconds = 1

[[clouds]]
name = "public"
tier = 1
[clouds.sim]
hosts = 100
host_vcpus = 64
host_ram_mb = 262144
boot_seconds = 1
price_per_vcpu_hour = 0.048
"""

PRIVATE_ONLY = """
[[clouds]]
name = "private"
tier = 0
[clouds.sim]
hosts = 1
host_vcpus = 8
host_ram_mb = 16384
boot_seconds = 1
api_latency_ms = 0
"""


def when(t: datetime) -> str:
    """A date as python-blazarclient sends it (whole minutes, UTC)."""
    return t.strftime("%Y-%m-%d %H:%M")


def body(
    name: str,
    start: datetime | str,
    end: datetime,
    *,
    amount: int = 1,
    vcpus: int = 1,
    memory_mb: int = 1024,
    affinity: str = "False",
) -> dict[str, Any]:
    """A create body exactly as `openstack reservation lease create` sends it."""
    return {
        "name": name,
        "start_date": start if isinstance(start, str) else when(start),
        "end_date": when(end),
        "reservations": [
            {
                "affinity": affinity,
                "disk_gb": 0,
                "memory_mb": memory_mb,
                "vcpus": vcpus,
                "amount": amount,
                "resource_type": "virtual:instance",
                "resource_properties": "",
            }
        ],
        "events": [],
        "before_end_date": None,
    }


def second_worker(p: Plane, db: Database, seed_value: int) -> Worker:
    """Another worker beside the plane's: its own runtime on `db` (its own connection pool
    on the same database), on the plane's clouds and fake clock."""
    return Worker(
        Runtime(
            db=db,
            settings=p.settings,
            drivers=p.rt.drivers,
            clock=p.clock,
            worker_id="second-worker",
            rng=random.Random(seed_value),
        )
    )


def leases(p: Plane) -> LeaseService:
    return LeaseService(p.settings, p.clock, p.service)


async def create(p: Plane, b: dict[str, Any], ctx: RequestContext | None = None) -> Lease:
    async with p.db.session() as s:
        return await leases(p).create(s, ctx or p.ctx, b)


def parse(text: str) -> datetime:
    return datetime.strptime(text, OUTPUT_FORMAT)


async def retime(db: Database, windows: dict[str, tuple[datetime, datetime]]) -> None:
    """Move leases (made with whole-minute dates) to windows to the second: their rows,
    events and claims, as a lease update would, for tests in real time."""
    async with db.session() as s:
        for lease_id, (start, end) in windows.items():
            await s.execute(
                update(Lease)
                .where(Lease.id == lease_id)
                .values(start_at=start, end_at=end, next_attempt_at=start)
            )
            for kind, at in (("start_lease", start), ("before_end_lease", end)):
                await s.execute(
                    update(LeaseEvent)
                    .where(LeaseEvent.lease_id == lease_id, LeaseEvent.event_type == kind)
                    .values(time=at)
                )
            await s.execute(
                update(LeaseEvent)
                .where(LeaseEvent.lease_id == lease_id, LeaseEvent.event_type == "end_lease")
                .values(time=end)
            )
            rids = select(Reservation.id).where(Reservation.lease_id == lease_id)
            await s.execute(
                update(Claim)
                .where(Claim.reservation_id.in_(rids))
                .values(starts_at=start, ends_at=end)
            )
