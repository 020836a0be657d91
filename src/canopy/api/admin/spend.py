"""Spend: what canopy's servers cost per hour, against the cap on burst tiers.

Amounts are kept in integer micro-units (domain.money); each is turned into a JSON number
here, once, from its integer, so the number written is the exact decimal amount.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import select

from canopy.api.admin.common import FAULTS
from canopy.api.deps import ReadSessionDep, SettingsDep
from canopy.domain.money import to_float
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
    rows = list(
        await s.execute(
            select(Cloud.name, Cloud.tier, Cloud.spend_per_hour_micros).order_by(
                Cloud.tier, Cloud.name
            )
        )
    )
    total = sum(int(m) for _, _, m in rows)
    burst = sum(int(m) for _, t, m in rows if t >= 1)
    cap = settings.scheduler.max_spend_per_hour_micros
    return SpendView(
        total_per_hour=to_float(total),
        burst_per_hour=to_float(burst),
        cap_per_hour=to_float(cap),
        headroom_per_hour=to_float(max(0, cap - burst)),
        clouds=[CloudSpend(name=n, tier=t, spend_per_hour=to_float(m)) for n, t, m in rows],
    )
