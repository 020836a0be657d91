"""Spend: what canopy's servers cost per hour, against the cap on burst tiers."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import select

from canopy.api.admin.common import FAULTS
from canopy.api.deps import ReadSessionDep, SettingsDep
from canopy.store.models import Cloud

router = APIRouter(tags=["spend"], responses=FAULTS)


class CloudSpend(BaseModel):
    name: str
    tier: int
    spend_per_hour: float


class SpendView(BaseModel):
    total_per_hour: float = Field(description="Summed hourly price of claimed servers.")
    burst_per_hour: float = Field(description="The part of the total on tiers >= 1.")
    cap_per_hour: float = Field(description="scheduler.max_spend_per_hour, for tiers >= 1.")
    headroom_per_hour: float = Field(description="What burst placements may still add.")
    clouds: list[CloudSpend]


@router.get("/spend", summary="Hourly spend in total, on burst tiers and per cloud")
async def show_spend(s: ReadSessionDep, settings: SettingsDep) -> SpendView:
    rows = await s.execute(
        select(Cloud.name, Cloud.tier, Cloud.spend_per_hour).order_by(Cloud.tier, Cloud.name)
    )
    clouds = [CloudSpend(name=n, tier=t, spend_per_hour=p) for n, t, p in rows]
    burst = sum(c.spend_per_hour for c in clouds if c.tier >= 1)
    cap = settings.scheduler.max_spend_per_hour
    return SpendView(
        total_per_hour=sum(c.spend_per_hour for c in clouds),
        burst_per_hour=burst,
        cap_per_hour=cap,
        headroom_per_hour=max(0.0, cap - burst),
        clouds=clouds,
    )
