"""Capacity blocks: a (cloud, zone, flavor) placement skips for a while after a capacity error.

A capacity error says "no room for this size here": in one zone when the cloud names it
(EC2's InsufficientInstanceCapacity is per instance type and AZ), else anywhere in the
cloud (zone ""). It says nothing about other sizes, so the block is per flavor: a cloud
full for m1.xlarge still takes m1.tiny. A cloud's own account quota is another matter
(it holds for every size and zone) and still blocklists the whole cloud (`clouds.
blocklisted_until`). Rows are upserted, never piled up: one per (cloud, zone, flavor),
its `until` moved on by each new error; expired rows are simply ignored (and overwritten).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.store.models import CapacityBlock, Flavor
from canopy.store.models.clouds import placement_name

EVERY_ZONE = ""


async def block(
    s: AsyncSession,
    *,
    cloud: str,
    zone: str | None,
    flavor_id: str,
    until: datetime,
    reason: str,
) -> None:
    """Skip (cloud, zone, flavor) until `until`; zone None blocks every zone of the cloud."""
    values = {
        "cloud": cloud,
        "zone": zone or EVERY_ZONE,
        "flavor_id": flavor_id,
        "until": until,
        "reason": reason[:2000],
    }
    dialect = s.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(CapacityBlock).values(**values)
    await s.execute(
        stmt.on_conflict_do_update(
            index_elements=["cloud", "zone", "flavor_id"],
            set_={"until": stmt.excluded.until, "reason": stmt.excluded.reason},
        )
    )


async def active_blocks(s: AsyncSession, now: datetime) -> dict[str, dict[str, dict[str, str]]]:
    """Blocks in force at `now`: cloud -> flavor name -> zone ("" = every zone) -> reason."""
    out: dict[str, dict[str, dict[str, str]]] = defaultdict(lambda: defaultdict(dict))
    rows = await s.execute(
        select(CapacityBlock.cloud, placement_name(), CapacityBlock.zone, CapacityBlock.reason)
        .join(Flavor, Flavor.id == CapacityBlock.flavor_id)
        .where(CapacityBlock.until > now)
    )
    for cloud, flavor, zone, reason in rows:
        out[cloud][flavor][zone] = reason
    return {c: dict(f) for c, f in out.items()}
