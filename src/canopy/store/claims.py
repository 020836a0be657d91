"""Capacity claims. A claim and the cloud's usage counters always change in one transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.store.models import Claim, Cloud


def add_claim(
    s: AsyncSession,
    cloud: Cloud,
    *,
    server_id: str,
    vcpus: int,
    ram_mb: int,
    disk_gb: int,
    price_per_hour: float,
    now: datetime,
) -> Claim:
    """Hold capacity on `cloud` (a row locked by the caller) for one server."""
    claim = Claim(
        **claim_row(
            cloud,
            server_id=server_id,
            vcpus=vcpus,
            ram_mb=ram_mb,
            disk_gb=disk_gb,
            price_per_hour=price_per_hour,
            now=now,
        )
    )
    s.add(claim)
    return claim


def claim_row(
    cloud: Cloud,
    *,
    server_id: str,
    vcpus: int,
    ram_mb: int,
    disk_gb: int,
    price_per_hour: float,
    now: datetime,
) -> dict[str, Any]:
    """Like add_claim, for a bulk insert: move `cloud`'s counters, return the claim's row."""
    cloud.vcpus_claimed += vcpus
    cloud.ram_mb_claimed += ram_mb
    cloud.instances_claimed += 1
    cloud.spend_per_hour = round(cloud.spend_per_hour + price_per_hour, 6)
    return {
        "server_id": server_id,
        "cloud": cloud.name,
        "vcpus": vcpus,
        "ram_mb": ram_mb,
        "disk_gb": disk_gb,
        "instances": 1,
        "price_per_hour": price_per_hour,
        "created_at": now,
    }


async def release_claim(s: AsyncSession, server_id: str) -> Claim | None:
    """Give back the server's claim, if it still holds one. Safe to call twice."""
    row = (
        await s.execute(delete(Claim).where(Claim.server_id == server_id).returning(Claim))
    ).scalar_one_or_none()
    if row is None:
        return None
    await s.execute(
        update(Cloud)
        .where(Cloud.name == row.cloud)
        .values(
            vcpus_claimed=Cloud.vcpus_claimed - row.vcpus,
            ram_mb_claimed=Cloud.ram_mb_claimed - row.ram_mb,
            instances_claimed=Cloud.instances_claimed - row.instances,
            spend_per_hour=Cloud.spend_per_hour - row.price_per_hour,
        )
    )
    return row
