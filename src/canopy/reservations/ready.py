"""Servers ready at the start: a lease may carry servers, booted ahead of its start.

A lease create may name servers to run in its reservations (Canopy's `servers` field).
They boot `lead` seconds before the start: the observed boot time of the clouds the
reservation is held on (the p95 of their recent servers' create -> ACTIVE times, or a
default with no history) plus a margin. The capacity they use in that lead is claimed at
create, on the clouds and in the amounts the reservation holds there, over
[boot_at, start): an early boot uses capacity held for it, never anyone else's, and a
lease whose early capacity is not free is refused (409) like one whose window is full.

At `boot_at` the lease controller writes the servers (as `server create --flavor
<reservation>` would, in its step's transaction); placement puts them in the early slots
(`using.free_slots`), and the rest of their way is any server's. `lease show` tells how
early they were started and whether they were ACTIVE by the start (`readiness`).
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.config import Settings
from canopy.domain.context import RequestContext
from canopy.domain.errors import Conflict, InvalidRequest, QuotaError
from canopy.reservations.capacity import shortfall
from canopy.reservations.dates import format_date
from canopy.reservations.requests import ServerRequest
from canopy.services import images as image_service
from canopy.services.server_create import CreateServer
from canopy.services.servers import ServerService
from canopy.store.claims import claim_row, peak_usage
from canopy.store.models import (
    Claim,
    Cloud,
    Keypair,
    Lease,
    LeaseServer,
    Reservation,
    Server,
)

HISTORY_DAYS = 7
log = logging.getLogger("canopy.leases")


async def boot_p95(
    s: AsyncSession, clouds: Sequence[str], now: datetime, history: int
) -> float | None:
    """The p95 of create -> ACTIVE seconds over the clouds' last `history` boots of the
    last week (None: no boot to go by)."""
    if not clouds:
        return None
    rows = await s.execute(
        select(Server.created_at, Server.launched_at)
        .where(
            Server.cloud.in_(sorted(set(clouds))),
            Server.launched_at.is_not(None),
            Server.created_at >= now - timedelta(days=HISTORY_DAYS),
        )
        .order_by(Server.created_at.desc())
        .limit(history)
    )
    took = sorted((up - made).total_seconds() for made, up in rows if up is not None)
    if not took:
        return None
    return took[min(len(took) - 1, math.ceil(0.95 * len(took)) - 1)]


def lead_seconds(p95: float | None, settings: Settings) -> float:
    r = settings.reservations
    boot = r.default_boot_seconds if p95 is None else max(0.0, p95)
    return min(r.max_boot_lead_seconds, boot + r.boot_margin_seconds)


async def carry(
    s: AsyncSession,
    settings: Settings,
    ctx: RequestContext,
    lease: Lease,
    wanted: Sequence[ServerRequest],
    reservation_ids: Sequence[str],
    now: datetime,
) -> None:
    """Record the servers `lease` carries, when they boot, and claim their early capacity
    (in the create's transaction, with the clouds locked)."""
    if not wanted:
        return
    by_id = {
        r.id: r
        for r in (
            await s.execute(select(Reservation).where(Reservation.lease_id == lease.id))
        ).scalars()
    }
    rows: list[LeaseServer] = []
    for w in wanted:
        try:
            image = await image_service.find(s, ctx, w.image)
        except InvalidRequest:
            image = None  # ambiguous
        if image is None:
            raise InvalidRequest(f"Lease server {w.name!r}: image {w.image!r} not found.")
        if w.key_name is not None:
            key = await s.scalar(
                select(Keypair.id).where(Keypair.user_id == ctx.user_id, Keypair.name == w.key_name)
            )
            if key is None:
                raise InvalidRequest(f"Lease server {w.name!r}: keypair {w.key_name!r} not found.")
        rows.append(
            LeaseServer(
                id=str(uuid.uuid4()),
                lease_id=lease.id,
                reservation_id=reservation_ids[w.reservation],
                name=w.name,
                image_id=image.id,
                key_name=w.key_name,
                user_data=w.user_data,
                count=w.count,
                server_ids=[],
                created_at=now,
            )
        )
    clouds = [p["cloud"] for r in rows for p in by_id[r.reservation_id].placement]
    p95 = await boot_p95(s, clouds, now, settings.reservations.boot_history)
    lease.boot_lead_seconds = lead_seconds(p95, settings)
    s.add_all(rows)
    await s.flush()
    await schedule_boot(s, lease, now)


async def schedule_boot(s: AsyncSession, lease: Lease, now: datetime) -> None:
    """Set `boot_at` from the start and the lead, and claim the early capacity over
    [boot_at, start) (any earlier early claims of the lease are the caller's to drop)."""
    assert lease.boot_lead_seconds is not None
    lease.boot_at = max(now, lease.start_at - timedelta(seconds=lease.boot_lead_seconds))
    if lease.boot_at >= lease.start_at:
        return  # starting now: the lease's own claim holds them
    carried = list(
        (await s.execute(select(LeaseServer).where(LeaseServer.lease_id == lease.id))).scalars()
    )
    need: dict[str, int] = {}
    for c in carried:
        need[c.reservation_id] = need.get(c.reservation_id, 0) + c.count
    reservations = {
        r.id: r
        for r in (
            await s.execute(select(Reservation).where(Reservation.id.in_(sorted(need))))
        ).scalars()
    }
    clouds = {
        c.name: c
        for c in (await s.execute(select(Cloud).order_by(Cloud.name).with_for_update())).scalars()
    }
    for rid in sorted(need):
        r, left = reservations[rid], need[rid]
        for share in r.placement:  # in the placement's order: private first
            n = min(left, int(share["amount"]))
            if n <= 0:
                break
            left -= n
            cloud = clouds[share["cloud"]]
            peak = await peak_usage(s, [cloud.name], lease.boot_at, lease.start_at)
            short = shortfall(cloud, peak, r.vcpus, r.memory_mb, n)
            if short is not None:
                free, unit, want = short
                raise Conflict(
                    f"Not enough resources available to boot the lease's servers "
                    f"{lease.boot_lead_seconds:g} s before its start: cloud {cloud.name} "
                    f"has {free} {unit} free from {format_date(lease.boot_at)}"
                    f" to the start, the servers need {want}."
                )
            price = int(share.get("price_per_hour_micros", 0))
            row = claim_row(
                cloud,
                reservation_id=rid,
                vcpus=r.vcpus * n,
                ram_mb=r.memory_mb * n,
                disk_gb=r.disk_gb * n,
                instances=n,
                price_per_hour_micros=price * n,
                now=now,
                starts_at=lease.boot_at,
                ends_at=lease.start_at,
            )
            await s.execute(insert(Claim), [row])
    await s.flush()


async def boot(s: AsyncSession, lease: Lease, servers: ServerService, now: datetime) -> list[str]:
    """Write the lease's servers (once: `booted_at` is set with them); returns the clouds
    whose early claims are in use from now (the caller settles the lease's claims)."""
    ctx = RequestContext(project_id=lease.project_id, user_id=lease.user_id)
    carried = list(
        (
            await s.execute(
                select(LeaseServer)
                .where(LeaseServer.lease_id == lease.id)
                .order_by(LeaseServer.created_at, LeaseServer.id)
            )
        ).scalars()
    )
    clouds: set[str] = set()
    for c in carried:
        made = await servers.create(
            ctx,
            CreateServer(
                name=c.name,
                flavor=c.reservation_id,
                image=c.image_id,
                key_name=c.key_name,
                user_data=c.user_data,
                min_count=c.count,
                max_count=c.count,
                metadata={"canopy_lease": lease.id},
            ),
            session=s,
            lease_boot=True,
        )
        c.server_ids = [sv.id for sv in made]
        clouds.update(
            (
                await s.execute(
                    select(Claim.cloud).where(
                        Claim.reservation_id == c.reservation_id, Claim.starts_at < lease.start_at
                    )
                )
            ).scalars()
        )
    lease.booted_at = now
    lease.updated_at = now
    return sorted(clouds)


async def boot_or_degrade(
    s: AsyncSession, lease: Lease, servers: ServerService, now: datetime
) -> list[str]:
    """`boot`, or if the servers cannot be made any more (their image was deleted, the
    project's quota is full), none of them: the lease is marked degraded and starts on
    time all the same (a boot that fails on every pass must not hold its start back)."""
    try:
        async with s.begin_nested():
            return await boot(s, lease, servers, now)
    except (InvalidRequest, QuotaError) as e:
        log.warning("lease %s: its servers cannot be booted: %s", lease.id, e)
        lease.booted_at = now
        lease.degraded = True
        lease.updated_at = now
        return []


async def readiness(s: AsyncSession, leases: Sequence[Lease]) -> dict[str, dict[str, Any]]:
    """For each lease that carries servers: how early they were started, and whether they
    were ACTIVE by the start (None while that is not known yet)."""
    ids = [lease.id for lease in leases if lease.boot_lead_seconds is not None]
    if not ids:
        return {}
    carried: dict[str, list[LeaseServer]] = {i: [] for i in ids}
    for c in (
        await s.execute(
            select(LeaseServer)
            .where(LeaseServer.lease_id.in_(ids))
            .order_by(LeaseServer.created_at, LeaseServer.id)
        )
    ).scalars():
        carried[c.lease_id].append(c)
    sids = [sid for cs in carried.values() for c in cs for sid in c.server_ids]
    found = (
        {sv.id: sv for sv in (await s.execute(select(Server).where(Server.id.in_(sids)))).scalars()}
        if sids
        else {}
    )
    out: dict[str, dict[str, Any]] = {}
    for lease in leases:
        if lease.id not in carried:
            continue
        mine = [found[sid] for c in carried[lease.id] for sid in c.server_ids if sid in found]
        up = [sv.launched_at for sv in mine if sv.launched_at is not None]
        ready_at = max(up) if mine and len(up) == len(mine) else None
        on_time: bool | None = None
        if ready_at is not None:
            on_time = ready_at <= lease.start_at
        elif lease.status != "PENDING":
            on_time = False  # started, and not all of them were (or are) ACTIVE
        out[lease.id] = {
            "boot_lead_seconds": lease.boot_lead_seconds,
            "boot_at": format_date(lease.boot_at) if lease.boot_at else None,
            "booted_at": format_date(lease.booted_at) if lease.booted_at else None,
            "started_early_seconds": (
                (lease.start_at - lease.booted_at).total_seconds() if lease.booted_at else None
            ),
            "ready_at": format_date(ready_at) if ready_at else None,
            "ready_on_time": on_time,
            "servers": [
                {"name": c.name, "count": c.count, "image": c.image_id, "ids": c.server_ids}
                for c in carried[lease.id]
            ],
        }
    return out
