"""Clouds: health, capacity, claims, utilisation and spend. Credentials never leave."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from canopy.api.admin.common import FAULTS, could_be_cloud
from canopy.api.deps import ClockDep, ReadSessionDep
from canopy.domain.errors import NotFound
from canopy.domain.money import to_float
from canopy.domain.share import total_of
from canopy.domain.states import Ability
from canopy.reconcile import CloudState, cloud_state
from canopy.store.models import CapacityBlock, Cloud, Flavor, Server

router = APIRouter(tags=["clouds"], responses=FAULTS)


class Capacity(BaseModel):
    """An amount of each dimension of a cloud; null means unbounded or unknown."""

    vcpus: int | None
    ram_mb: int | None
    instances: int | None


class Claimed(BaseModel):
    """Capacity held by canopy's claims."""

    vcpus: int
    ram_mb: int
    instances: int


class AbilityView(BaseModel):
    """One optional ability of the cloud's driver, and why it is missing if it is."""

    available: bool
    reason: str | None = Field(description="Why the cloud cannot do it (null if it can).")


class BlockView(BaseModel):
    """A capacity block: placement skips this zone for this flavor until `until`."""

    zone: str | None = Field(description="The zone inside the cloud; null: every zone.")
    flavor: str
    until: datetime
    reason: str


class CloudView(BaseModel):
    name: str
    driver: str
    tier: int
    state: CloudState = Field(
        description="enabled; disabled (enabled = false in the config, or disabled at run "
        "time); draining (removed from the config or at run time: no new servers, its "
        "servers can still be deleted); removed (removed and holds no servers)."
    )
    enabled: bool
    healthy: bool
    health_message: str
    last_ok_at: datetime | None
    consecutive_failures: int
    blocklisted: bool = Field(
        description="Whether the scheduler skips this whole cloud right now (after a cloud "
        "quota error); capacity errors block a zone and flavor instead (capacity_blocks)."
    )
    blocklisted_until: datetime | None
    blocklist_reason: str
    zones: list[str] | None = Field(
        description="The zones inside the cloud, as its driver last reported them (null: not "
        "asked yet; empty: none to choose between). Users see the cloud as one zone."
    )
    zones_updated_at: datetime | None
    capacity_blocks: list[BlockView] = Field(
        description="(zone, flavor) pairs placement skips for now after capacity errors."
    )
    abilities: dict[str, AbilityView] = Field(
        description="Each optional ability and whether this cloud has it; a request that "
        "needs a missing one is refused with the reason before it is accepted."
    )
    capacity: Capacity = Field(
        description="What canopy may fill: the cloud's total less what others use there."
    )
    cloud_total: Capacity = Field(
        description="The cloud's own total (its quota, narrowed by its hypervisors when the "
        "credentials may read them), as the inventory last read it."
    )
    used_by_others: Capacity = Field(
        description="What servers canopy did not create use of the cloud (null: the cloud "
        "does not say what is free, so canopy may fill the whole total)."
    )
    capacity_updated_at: datetime | None
    claimed: Claimed
    utilisation: float = Field(
        ge=0.0, le=1.0, description="Max over bounded dimensions of claimed / capacity."
    )
    spend_per_hour: float
    servers: dict[str, int] = Field(description="Non-deleted servers on this cloud by status.")
    server_count: int = Field(
        description="Non-deleted servers on this cloud (for a draining cloud: how many remain)."
    )
    has_credentials: bool = Field(description="Whether credentials are stored (never shown).")
    source: str = Field(
        description="config (a [[clouds]] entry of the config file, edited there) or api "
        "(added at run time, changed through this API or `canopy cloud set`)."
    )


class CloudList(BaseModel):
    items: list[CloudView]


def utilisation(c: Cloud) -> float:
    """The largest claimed fraction over the bounded dimensions, in 0..1."""
    parts = [0.0]
    for claimed, capacity in (
        (c.vcpus_claimed, c.vcpus_capacity),
        (c.ram_mb_claimed, c.ram_mb_capacity),
        (c.instances_claimed, c.instances_capacity),
    ):
        if capacity is None:
            continue
        parts.append(1.0 if capacity <= 0 else claimed / capacity)
    return min(1.0, max(parts))


async def server_counts(s: AsyncSession, cloud: str | None = None) -> dict[str, dict[str, int]]:
    """Non-deleted servers per cloud per status ('' for servers on no cloud yet)."""
    q = (
        select(Server.cloud, Server.status, func.count())
        .where(Server.deleted.is_(False))
        .group_by(Server.cloud, Server.status)
    )
    if cloud is not None:
        q = q.where(Server.cloud == cloud)
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for name, status, n in await s.execute(q):
        out[name or ""][status] = int(n)
    return out


async def load_clouds(s: AsyncSession, name: str | None = None) -> list[tuple[Cloud, bool]]:
    """Clouds with whether credentials are set; the credentials column is never loaded."""
    q = (
        select(Cloud, Cloud.credentials.is_not(None).label("has_credentials"))
        .options(defer(Cloud.credentials))
        .order_by(Cloud.tier, Cloud.name)
    )
    if name is not None:
        q = q.where(Cloud.name == name)
    return [(c, bool(has)) for c, has in await s.execute(q)]


async def capacity_blocks(
    s: AsyncSession, now: datetime, cloud: str | None = None
) -> dict[str, list[BlockView]]:
    """The capacity blocks in force, per cloud."""
    q = (
        select(CapacityBlock, Flavor.name)
        .join(Flavor, Flavor.id == CapacityBlock.flavor_id)
        .where(CapacityBlock.until > now)
        .order_by(CapacityBlock.cloud, CapacityBlock.zone, Flavor.name)
    )
    if cloud is not None:
        q = q.where(CapacityBlock.cloud == cloud)
    out: dict[str, list[BlockView]] = defaultdict(list)
    for b, flavor in await s.execute(q):
        out[b.cloud].append(
            BlockView(zone=b.zone or None, flavor=flavor, until=b.until, reason=b.reason)
        )
    return out


def abilities(c: Cloud) -> dict[str, AbilityView]:
    """Every optional ability, with the reason the cloud's driver gave for lacking it."""
    missing = c.abilities or {}
    return {
        a.value: AbilityView(available=a.value not in missing, reason=missing.get(a.value))
        for a in Ability
    }


def cloud_view(
    c: Cloud,
    has_credentials: bool,
    servers: dict[str, int],
    now: datetime,
    blocks: list[BlockView] | None = None,
) -> CloudView:
    return CloudView(
        name=c.name,
        driver=c.driver,
        tier=c.tier,
        state=cloud_state(c, sum(servers.values())),
        enabled=c.enabled,
        healthy=c.healthy,
        health_message=c.health_message,
        last_ok_at=c.last_ok_at,
        consecutive_failures=c.consecutive_failures,
        blocklisted=c.blocklisted_until is not None and c.blocklisted_until > now,
        blocklisted_until=c.blocklisted_until,
        blocklist_reason=c.blocklist_reason,
        zones=None if c.zones is None else list(c.zones),
        zones_updated_at=c.zones_updated_at,
        capacity_blocks=blocks or [],
        abilities=abilities(c),
        capacity=Capacity(
            vcpus=c.vcpus_capacity, ram_mb=c.ram_mb_capacity, instances=c.instances_capacity
        ),
        cloud_total=Capacity(
            vcpus=total_of(c.vcpus_capacity, c.vcpus_others),
            ram_mb=total_of(c.ram_mb_capacity, c.ram_mb_others),
            instances=total_of(c.instances_capacity, c.instances_others),
        ),
        used_by_others=Capacity(
            vcpus=c.vcpus_others, ram_mb=c.ram_mb_others, instances=c.instances_others
        ),
        capacity_updated_at=c.capacity_updated_at,
        claimed=Claimed(
            vcpus=c.vcpus_claimed, ram_mb=c.ram_mb_claimed, instances=c.instances_claimed
        ),
        utilisation=utilisation(c),
        spend_per_hour=to_float(c.spend_per_hour_micros),
        servers=servers,
        server_count=sum(servers.values()),
        has_credentials=has_credentials,
        source=c.source,
    )


@router.get("/clouds", summary="List clouds with capacity, utilisation and spend")
async def list_clouds(s: ReadSessionDep, clock: ClockDep) -> CloudList:
    rows = await load_clouds(s)
    counts = await server_counts(s)
    now = clock.now()
    blocks = await capacity_blocks(s, now)
    return CloudList(
        items=[
            cloud_view(c, has, counts.get(c.name, {}), now, blocks.get(c.name)) for c, has in rows
        ]
    )


@router.get("/clouds/{name}", summary="Show one cloud")
async def show_cloud(name: str, s: ReadSessionDep, clock: ClockDep) -> CloudView:
    rows = await load_clouds(s, name) if could_be_cloud(name) else []
    if not rows:
        raise NotFound(f"Cloud {name} could not be found.")
    c, has = rows[0]
    counts = await server_counts(s, c.name)
    now = clock.now()
    blocks = await capacity_blocks(s, now, c.name)
    return cloud_view(c, has, counts.get(c.name, {}), now, blocks.get(c.name))
