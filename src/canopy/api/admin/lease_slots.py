"""`POST /canopy/v1/leases/find-slot`: the earliest window where N servers of a size fit.

Any project's members and readers may ask (it reads and holds nothing, like `lease
list`): the answer is what a lease create would accept now, given every claim in the store.
It is a POST because a search with a size, a count, a duration and a range is a body, the
same fields a reservation has; nothing is created.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from canopy.api.admin.common import FAULTS, Strict
from canopy.api.auth import AuthDep
from canopy.api.deps import ClockDep, ReadSessionDep, SettingsDep
from canopy.domain.money import to_float
from canopy.reservations.capacity import Size
from canopy.reservations.find_slot import find_slot
from canopy.reservations.slots import SlotAnswer, SlotQuery

router = APIRouter(tags=["leases"], responses=FAULTS)

BLAZAR_INPUT = "%Y-%m-%d %H:%M"


class FindSlot(Strict):
    flavor: str | None = Field(
        default=None, description="A public flavor's id or name; or give vcpus and memory_mb."
    )
    vcpus: int | None = None
    memory_mb: int | None = None
    disk_gb: int | None = None
    count: int = Field(default=1, description="How many servers (1..10,000).")
    duration: str = Field(description='Whole minutes: "90m", "8h", "2d", "1d12h".')
    after: str = Field(default="now", description='UTC, "YYYY-MM-DD HH:MM", or "now".')
    before: str | None = Field(
        default=None, description='UTC, "YYYY-MM-DD HH:MM"; default a week after `after`.'
    )
    affinity: bool | None = Field(default=None, description="true: every server on one cloud.")


class SlotCloud(BaseModel):
    cloud: str
    amount: int
    reason: str = Field(description="The scheduler's sentence for this cloud.")
    price_per_hour: float = Field(description="One server here, per hour.")
    cost_per_hour: float = Field(description="This cloud's share, per hour.")


class SlotView(BaseModel):
    start: datetime
    end: datetime
    start_date: str = Field(description="The start as `lease create --start-date` takes it.")
    end_date: str = Field(description="The end as `lease create --end-date` takes it.")
    clouds: list[SlotCloud]
    cost_per_hour: float
    cost: float = Field(description="cost_per_hour over the whole window.")


class SearchedView(BaseModel):
    earliest: datetime = Field(description="The first start looked at (a whole minute).")
    latest: datetime = Field(description="The last start the range allows.")
    candidates: int = Field(
        description="Starts that needed checking (the first, each end) in what was read."
    )
    examined: int
    complete: bool = Field(
        description="False: the search stopped at its bound before latest; no slot starts "
        "before `until`, and asking again with `after` = `until` goes on."
    )
    until: datetime | None = Field(description="The last start examined.")


class SizeView(BaseModel):
    count: int
    vcpus: int
    memory_mb: int
    disk_gb: int
    flavor: str | None
    duration_minutes: int


class FindSlotAnswer(BaseModel):
    slot: SlotView | None = Field(description="The earliest window, or null: none in range.")
    reason: str = Field(description="Why the first start examined was refused, if it was.")
    searched: SearchedView
    size: SizeView


def answer_view(q: SlotQuery, size: Size, a: SlotAnswer) -> FindSlotAnswer:
    """The search's answer as the API and the CLI show it."""
    slot = None
    minutes = int(q.duration.total_seconds() // 60)
    if a.slot is not None:
        hourly = a.slot.cost_per_hour_micros
        slot = SlotView(
            start=a.slot.start,
            end=a.slot.end,
            start_date=a.slot.start.strftime(BLAZAR_INPUT),
            end_date=a.slot.end.strftime(BLAZAR_INPUT),
            clouds=[
                SlotCloud(
                    cloud=sh.cloud,
                    amount=sh.amount,
                    reason=sh.reason,
                    price_per_hour=to_float(a.slot.price_per_hour_micros[sh.cloud]),
                    cost_per_hour=to_float(a.slot.price_per_hour_micros[sh.cloud] * sh.amount),
                )
                for sh in a.slot.shares
            ],
            cost_per_hour=to_float(hourly),
            cost=to_float((hourly * minutes + 30) // 60),
        )
    return FindSlotAnswer(
        slot=slot,
        reason=a.reason,
        searched=SearchedView(
            earliest=a.earliest,
            latest=a.latest,
            candidates=a.candidates,
            examined=a.examined,
            complete=a.complete,
            until=a.searched_until,
        ),
        size=SizeView(
            count=q.amount,
            vcpus=size.vcpus,
            memory_mb=size.ram_mb,
            disk_gb=size.disk_gb,
            flavor=q.flavor,
            duration_minutes=minutes,
        ),
    )


@router.post(
    "/leases/find-slot",
    summary="Find the earliest window where N servers of a size can be reserved",
)
async def find_lease_slot(
    body: FindSlot, ctx: AuthDep, s: ReadSessionDep, settings: SettingsDep, clock: ClockDep
) -> FindSlotAnswer:
    raw = body.model_dump(exclude_none=True)
    q, size, a = await find_slot(s, settings, clock.now(), raw)
    return answer_view(q, size, a)
