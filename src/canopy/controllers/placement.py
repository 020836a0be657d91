"""Placement: choose a cloud for each waiting server and claim its capacity, in one transaction.

The decision, its claim and the cloud's usage counters commit together. The cloud rows are
locked (`FOR UPDATE`, in name order) for the whole batch on PostgreSQL; SQLite has a single
writer. So any number of workers can run this and never oversubscribe a cloud.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Row, Table, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from canopy.controllers.placement_rows import PLACED, placed, waiting
from canopy.controllers.runtime import Runtime
from canopy.controllers.summary import attempted, attempts_text
from canopy.domain.placement import (
    KEPT_ALTERNATES,
    CloudSnapshot,
    Decision,
    GroupState,
    PlacementRequest,
)
from canopy.domain.specs import Resources
from canopy.domain.states import Phase, ServerStatus
from canopy.notifications.outbox import server_failed
from canopy.reservations import host_use
from canopy.reservations.using import free_slots, take_slot
from canopy.scheduler import apply_claim, schedule
from canopy.store.capacity_blocks import active_blocks
from canopy.store.claims import claim_row, clouds_with_later_claims, peaks_by_cloud
from canopy.store.events import add_event, event_row, latest_action_ids
from canopy.store.leases import due
from canopy.store.models import (
    Claim,
    Cloud,
    Flavor,
    FlavorMapping,
    ImageMapping,
    InstanceActionEvent,
    Placement,
    Server,
    ServerGroup,
)
from canopy.store.models.clouds import placement_name
from canopy.store.plans import rare
from canopy.store.snapshots import cloud_snapshot, counted
from canopy.telemetry import PLACEMENTS

log = logging.getLogger("canopy.placement")

# A cloud row's columns placement never reads: the hosts list alone is a JSON document of
# up to thousands of hosts per cloud, decoded for each cloud on each pass. Raise, rather
# than load lazily, if anything here ever reads them.
UNUSED_CLOUD_COLUMNS = [
    defer(col, raiseload=True) for col in (Cloud.hosts, Cloud.driver_settings, Cloud.credentials)
]


class PlacementController:
    """Runs the scheduler for servers in phase `schedule`."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def run_once(self) -> int:
        """Place one batch; returns how many servers it looked at."""
        now = self.rt.clock.now()
        async with self.rt.db.read() as s:  # most passes find nothing: no write lock for that
            waiting = await s.execute(
                select(Server.id)
                .where(rare(Server.phase == Phase.SCHEDULE), due(Server, now))
                .limit(1)
            )
            if waiting.first() is None:
                return 0
        async with self.rt.db.session() as s:
            seen, placed = await self._place_batch(s)
        if placed:
            self.rt.notify("provisioning")  # committed: the servers are ready to create
        return seen

    async def _place_batch(self, s: AsyncSession) -> tuple[int, int]:
        """(servers looked at, servers placed) for one batch, in the caller's transaction."""
        rt = self.rt
        now = rt.clock.now()
        # Plain rows, written back by one UPDATE (controllers/placement_rows.py).
        conn = await s.connection()
        servers = list(await conn.execute(waiting(now, rt.settings.controllers.batch_size)))
        if not servers:
            return 0, 0
        clouds = {
            c.name: c
            for c in (
                await s.execute(
                    select(Cloud)
                    .options(*UNUSED_CLOUD_COLUMNS)
                    .order_by(Cloud.name)
                    .with_for_update()
                )
            ).scalars()
        }
        snaps = await _snapshots(s, clouds, now)
        flavors = {f.id: f for f in (await s.execute(select(Flavor))).scalars()}
        groups = await _groups(s, servers)
        # Servers booted into a reservation take its slots, not the scheduler's choice.
        slots = await free_slots(
            s, {sv.flavor_id for sv in servers if not flavors[sv.flavor_id].is_public}
        )
        # Servers booted with the hint `reservation=<id>` go to that reservation's hosts.
        rooms = await host_use.rooms(s, {sv.reservation_id for sv in servers if sv.reservation_id})
        actions = await latest_action_ids(s, [sv.id for sv in servers], "create")
        placements: list[dict[str, Any]] = []
        claims: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        moved: list[dict[str, Any]] = []  # PLACED's values, one per placed server
        unplaced: list[tuple[Row[Any], Decision]] = []  # recorded after, as entities
        # Rows are written in bulk at the end; no statement is needed before then.
        with s.no_autoflush:
            for server in servers:
                flavor = flavors[server.flavor_id]
                if server.reservation_id is not None:
                    tried = (a["cloud"] for a in attempted(server.attempt_log) if a.get("cloud"))
                    decision, room = host_use.take_host(
                        rooms, server.reservation_id, flavor, clouds, tried
                    )
                    if room is None:
                        unplaced.append((server, decision))
                        PLACEMENTS.labels(result="unplaced", cloud="").inc()
                    else:  # held by the host's own claim: no claim of its own
                        out = (placements, events, moved)
                        self._placed(server, decision, now, out, actions, host=room.host_id)
                        PLACEMENTS.labels(result="placed", cloud=room.cloud).inc()
                    continue
                if flavor.id in slots:
                    tried = (a["cloud"] for a in attempted(server.attempt_log) if a.get("cloud"))
                    decision = take_slot(slots, flavor.id, clouds, tried)
                    if decision.cloud is None:
                        unplaced.append((server, decision))
                        PLACEMENTS.labels(result="unplaced", cloud="").inc()
                    else:  # held by the reservation's claim: no claim of its own
                        self._placed(server, decision, now, (placements, events, moved), actions)
                        PLACEMENTS.labels(result="placed", cloud=decision.cloud).inc()
                    continue
                req = _request(server, flavor, groups)
                decision = schedule(list(snaps.values()), req, rt.settings.scheduler)
                if decision.cloud is None:
                    unplaced.append((server, decision))
                    PLACEMENTS.labels(result="unplaced", cloud="").inc()
                    continue
                chosen = decision.cloud
                apply_claim(snaps[chosen], req)
                price = snaps[chosen].price_per_hour_micros.get(flavor.placement_name, 0)
                claims.append(
                    claim_row(
                        clouds[chosen],
                        server_id=server.id,
                        vcpus=flavor.vcpus,
                        ram_mb=flavor.ram_mb,
                        disk_gb=flavor.disk_gb,
                        price_per_hour_micros=price,
                        now=now,
                    )
                )
                if server.group_id:
                    groups[server.group_id][1].append(chosen)
                self._placed(server, decision, now, (placements, events, moved), actions)
                PLACEMENTS.labels(result="placed", cloud=chosen).inc()
            if unplaced:
                # Rare, and each changes more than a placed server: written through its
                # entity, all of them loaded in one statement.
                ids = [row.id for row, _ in unplaced]
                found = await s.execute(select(Server).where(Server.id.in_(ids)))
                entities = {sv.id: sv for sv in found.scalars()}
                for row, decision in unplaced:
                    await self._unplaced(s, entities[row.id], decision)
        if moved:
            await conn.execute(PLACED, moved)
        # Core INSERTs on the batch's connection, as its UPDATE: no ORM bulk path per row.
        for model, rows in (
            (Placement, placements),
            (Claim, claims),
            (InstanceActionEvent, events),
        ):
            if rows:
                await conn.execute(insert(cast(Table, model.__table__)), rows)
        return len(servers), len(placements)

    def _placed(
        self,
        server: Row[Any],
        decision: Decision,
        now: datetime,
        out: tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]],
        actions: dict[str, int],
        *,
        host: int | None = None,
    ) -> None:
        """A placed server's rows, added to `out`: its placement, its instance action's
        event, and its values for `PLACED` (with the reservation host it takes, if any)."""
        placements, events, moved = out
        moved.append(placed(server, decision.cloud, decision.zone, host, now))
        attempt = server.attempts + 1
        placements.append(
            {
                "server_id": server.id,
                "attempt": attempt,
                "cloud": decision.cloud,
                "alternates": decision.alternates[:KEPT_ALTERNATES],
                "explanation": decision.stored_explanation(),
                "reason": decision.reason,
                "worker": self.rt.worker_id,
                "created_at": now,
            }
        )
        if server.id in actions:
            events.append(
                event_row(
                    actions[server.id],
                    event=f"schedule (attempt {attempt})",
                    result="Success",
                    details=f"placed on {where(decision.cloud, decision.zone)}: {decision.reason}",
                    host=decision.cloud,
                    now=now,
                )
            )

    async def _unplaced(self, s: AsyncSession, server: Server, decision: Decision) -> None:
        """A server the batch could not place: it waits for capacity, or fails."""
        rt = self.rt
        now = rt.clock.now()
        sched = rt.settings.scheduler
        if server.schedule_deadline is None:
            server.schedule_deadline = now + timedelta(seconds=sched.schedule_timeout_seconds)
        if decision.retryable and now < server.schedule_deadline:
            # Capacity or spend headroom may come back: stay in BUILD/scheduling and retry.
            last = (
                await s.execute(
                    select(Placement.reason)
                    .where(Placement.server_id == server.id)
                    .order_by(Placement.id.desc())
                    .limit(1)
                )
            ).scalar_one_or_none()
            if last != decision.reason:
                s.add(
                    Placement(
                        server_id=server.id,
                        attempt=server.attempts + 1,
                        cloud=None,
                        alternates=[],
                        explanation=decision.explanation.to_dict(),
                        reason=decision.reason,
                        worker=rt.worker_id,
                        created_at=now,
                    )
                )
                await add_event(
                    s,
                    server_id=server.id,
                    action="create",
                    event="schedule (waiting)",
                    result=None,
                    details=f"{decision.reason}; waiting until "
                    f"{server.schedule_deadline.isoformat()} for capacity",
                    now=now,
                )
            server.next_attempt_at = now + timedelta(seconds=sched.retry_seconds)
            server.updated_at = now
            return
        waited = " after waiting for capacity" if decision.retryable else ""
        message = f"No valid host was found{waited}. {decision.reason}"
        if server.attempt_log:
            message += f". Earlier attempts: {attempts_text(server.attempt_log)}"
        s.add(
            Placement(
                server_id=server.id,
                attempt=server.attempts + 1,
                cloud=None,
                alternates=[],
                explanation=decision.explanation.to_dict(),
                reason=decision.reason,
                worker=self.rt.worker_id,
                created_at=now,
            )
        )
        server.phase = Phase.FAILED
        server.status = ServerStatus.ERROR
        server.task_state = None
        server.fault_code = 500
        server.fault_message = message
        server.fault_at = now
        server.next_attempt_at = None
        server.updated_at = now
        server_failed(s, server, now)
        await add_event(
            s,
            server_id=server.id,
            action="create",
            event="schedule",
            result="Error",
            details=message,
            now=now,
        )


async def _snapshots(
    s: AsyncSession, clouds: dict[str, Cloud], now: datetime
) -> dict[str, CloudSnapshot]:
    prices: dict[str, dict[str, int]] = defaultdict(dict)
    rows = await s.execute(
        select(FlavorMapping.cloud, placement_name(), FlavorMapping.price_per_hour_micros).join(
            Flavor, Flavor.id == FlavorMapping.flavor_id
        )
    )
    for cloud, fname, price in rows:
        prices[cloud][fname] = price
    mapped: dict[str, set[str]] = defaultdict(set)
    for cloud, image_id in await s.execute(select(ImageMapping.cloud, ImageMapping.image_id)):
        mapped[cloud].add(image_id)
    blocks = await active_blocks(s, now)
    # A server's claim is open-ended from now, so it must fit under the most in use at any
    # moment from now on. That is what the counters say unless a claim starts later (a
    # reservation's): only those clouds need the sweep over their claims, all in one query.
    later = sorted(n for n in await clouds_with_later_claims(s, now) if n in clouds)
    peaks = await peaks_by_cloud(s, later, now) if later else {}
    snaps: dict[str, CloudSnapshot] = {}
    for c in clouds.values():
        peak = peaks.get(c.name)
        snaps[c.name] = cloud_snapshot(
            c,
            now,
            counted(c) if peak is None else peak,
            price_per_hour_micros=prices.get(c.name, {}),
            # Inventory says whether the cloud boots canopy's image ids unmapped.
            images=None if c.any_image else frozenset(mapped.get(c.name, ())),
            zones=tuple(c.zones or ()),
            capacity_blocks=blocks.get(c.name, {}),
        )
    return snaps


async def _groups(s: AsyncSession, servers: list[Row[Any]]) -> dict[str, tuple[str, list[str]]]:
    """For each server group in the batch: its policy and the clouds its members occupy."""
    ids = {sv.group_id for sv in servers if sv.group_id}
    out: dict[str, tuple[str, list[str]]] = {}
    if not ids:
        return out
    for g in (await s.execute(select(ServerGroup).where(ServerGroup.id.in_(ids)))).scalars():
        out[g.id] = (g.policy, [])
    rows = await s.execute(
        select(Server.group_id, Server.cloud).where(
            Server.group_id.in_(ids), Server.deleted.is_(False), Server.cloud.is_not(None)
        )
    )
    for gid, cloud in rows:
        if gid in out and cloud:
            out[gid][1].append(cloud)
    return out


def _request(
    server: Row[Any] | Server, flavor: Flavor, groups: dict[str, tuple[str, list[str]]]
) -> PlacementRequest:
    """What the scheduler is asked for one server (a batch's row, or its entity)."""
    group = None
    if server.group_id and server.group_id in groups:
        policy, members = groups[server.group_id]
        group = GroupState(policy=policy, member_clouds=tuple(members))
    return PlacementRequest(
        server_id=server.id,
        flavor=flavor.placement_name,
        resources=Resources(flavor.vcpus, flavor.ram_mb, flavor.disk_gb, 1),
        flavor_created_at=flavor.created_at,
        image_id=server.image_id,
        availability_zone=server.requested_zone,
        group=group,
        # A failure in a zone rules out that zone; one that named no zone, the cloud.
        excluded=frozenset(
            a["cloud"]
            for a in attempted(server.attempt_log)
            if a.get("cloud") and not a.get("zone")
        ),
        tried_zones=frozenset(
            (a["cloud"], a["zone"])
            for a in attempted(server.attempt_log)
            if a.get("cloud") and a.get("zone")
        ),
    )


def where(cloud: str | None, zone: str | None) -> str:
    """A cloud, and the zone inside it when there is one: `aws-east (us-east-1a)`."""
    return f"{cloud} ({zone})" if zone else str(cloud)
