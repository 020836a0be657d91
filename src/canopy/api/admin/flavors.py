"""Flavors and how each cloud offers them, at what price."""

from __future__ import annotations

from collections import defaultdict

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import select

from canopy.api.admin.common import FAULTS
from canopy.api.deps import ReadSessionDep
from canopy.domain.money import to_float
from canopy.store.models import Flavor, FlavorMapping

router = APIRouter(tags=["flavors"], responses=FAULTS)


class FlavorMappingView(BaseModel):
    cloud: str
    remote_flavor: str
    price_per_hour: float


class FlavorView(BaseModel):
    id: str
    name: str
    vcpus: int
    ram_mb: int
    disk_gb: int
    is_public: bool
    mappings: list[FlavorMappingView]


class FlavorList(BaseModel):
    items: list[FlavorView]


@router.get("/flavors", summary="List flavors with their per-cloud mappings and prices")
async def list_flavors(s: ReadSessionDep) -> FlavorList:
    maps: dict[str, list[FlavorMappingView]] = defaultdict(list)
    rows = await s.execute(select(FlavorMapping).order_by(FlavorMapping.cloud))
    for m in rows.scalars():
        maps[m.flavor_id].append(
            FlavorMappingView(
                cloud=m.cloud,
                remote_flavor=m.remote_flavor,
                price_per_hour=to_float(m.price_per_hour_micros),
            )
        )
    # Deleted flavors (kept for the servers booted with them) are not listed.
    flavors = await s.execute(
        select(Flavor)
        .where(Flavor.deleted_at.is_(None))
        .order_by(Flavor.vcpus, Flavor.ram_mb, Flavor.name)
    )
    return FlavorList(
        items=[
            FlavorView(
                id=f.id,
                name=f.name,
                vcpus=f.vcpus,
                ram_mb=f.ram_mb,
                disk_gb=f.disk_gb,
                is_public=f.is_public,
                mappings=maps.get(f.id, []),
            )
            for f in flavors.scalars()
        ]
    )
