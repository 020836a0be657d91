"""Placements: each scheduling decision, newest first, with its explanation."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from canopy.api.admin.common import FAULTS, could_be_id
from canopy.api.deps import ReadSessionDep, SettingsDep
from canopy.api.pagination import DEFAULT_LIMIT, LimitQuery, Page, paginate
from canopy.domain.errors import NotFound
from canopy.store.models import Placement, Server

router = APIRouter(tags=["placements"], responses=FAULTS)

PlacementMarker = Annotated[
    int | None,
    Query(ge=1, le=2**31 - 1, description="The id of the last placement of the previous page."),
]


class PlacementView(BaseModel):
    id: int
    server_id: str
    attempt: int
    cloud: str | None = Field(description="The chosen cloud; null if none could take it.")
    zone: str | None = Field(
        description="The zone chosen inside the cloud; null when it has none to choose between."
    )
    alternates: list[Any]
    reason: str
    explanation: dict[str, Any] = Field(
        description="Per-filter removals, weights, policy; with zones, the chosen zone and "
        "the zones passed over (zones_skipped) with why."
    )
    created_at: datetime


def _view(p: Placement) -> PlacementView:
    return PlacementView(
        id=p.id,
        server_id=p.server_id,
        attempt=p.attempt,
        cloud=p.cloud,
        zone=p.explanation.get("zone") if isinstance(p.explanation, dict) else None,
        alternates=list(p.alternates),
        reason=p.reason,
        explanation=dict(p.explanation),
        created_at=p.created_at,
    )


async def _page(
    request: Request,
    s: ReadSessionDep,
    settings: SettingsDep,
    server_id: str | None,
    limit: int,
    marker: int | None,
) -> Page[PlacementView]:
    q = select(Placement).order_by(Placement.id.desc()).limit(limit + 1)
    if server_id is not None:
        q = q.where(Placement.server_id == server_id)
    if marker is not None:
        q = q.where(Placement.id < marker)
    rows = list((await s.execute(q)).scalars())
    kept, nxt = paginate(request, settings, rows, limit, lambda p: str(p.id))
    return Page[PlacementView](items=[_view(p) for p in kept], next=nxt)


@router.get("/placements", summary="List placements, newest first")
async def list_placements(
    request: Request,
    s: ReadSessionDep,
    settings: SettingsDep,
    server_id: Annotated[str | None, Query(min_length=1, max_length=255)] = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    marker: PlacementMarker = None,
) -> Page[PlacementView]:
    if server_id is not None and not could_be_id(server_id):
        return Page[PlacementView](items=[], next=None)
    return await _page(request, s, settings, server_id, limit, marker)


@router.get("/servers/{server_id}/placements", summary="List one server's placements")
async def server_placements(
    server_id: str,
    request: Request,
    s: ReadSessionDep,
    settings: SettingsDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    marker: PlacementMarker = None,
) -> Page[PlacementView]:
    if not could_be_id(server_id) or await s.get(Server, server_id) is None:
        raise NotFound(f"Server {server_id} could not be found.")
    return await _page(request, s, settings, server_id, limit, marker)
