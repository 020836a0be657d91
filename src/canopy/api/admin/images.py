"""Images and their per-cloud mappings: list, register, map onto a cloud."""

from __future__ import annotations

import uuid
import zlib
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.api.admin.common import FAULTS, Strict, could_be_cloud, could_be_id
from canopy.api.deps import ClockDep, ReadSessionDep, SessionDep, SettingsDep, wake_after_commit
from canopy.api.pagination import DEFAULT_LIMIT, LimitQuery, MarkerQuery, Page, paginate
from canopy.domain.errors import InvalidRequest, NotFound
from canopy.services import images as images_service
from canopy.store.models import Cloud, Image, ImageMapping

router = APIRouter(tags=["images"], responses=FAULTS)

# Serialises registrations on PostgreSQL so two requests cannot both take one name.
_REGISTER_LOCK = zlib.crc32(b"canopy:images:register")

Text255 = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f]+$")]


class ImageMappingView(BaseModel):
    cloud: str
    remote_image: str


class ImageView(BaseModel):
    id: str
    name: str
    status: str
    visibility: str
    min_disk: int
    min_ram: int
    created_at: datetime
    updated_at: datetime
    mappings: list[ImageMappingView]


class ImageCreate(Strict):
    name: Text255
    id: uuid.UUID | None = Field(default=None, description="Defaults to a new UUID.")
    map: dict[str, Text255] = Field(
        default_factory=dict, description="Cloud name -> the image's id on that cloud."
    )


class ImageMapUpdate(Strict):
    remote_image: Text255


async def _mappings(s: AsyncSession, ids: Sequence[str]) -> dict[str, list[ImageMappingView]]:
    out: dict[str, list[ImageMappingView]] = defaultdict(list)
    if not ids:
        return out
    rows = await s.execute(
        select(ImageMapping).where(ImageMapping.image_id.in_(ids)).order_by(ImageMapping.cloud)
    )
    for m in rows.scalars():
        out[m.image_id].append(ImageMappingView(cloud=m.cloud, remote_image=m.remote_image))
    return out


def _view(img: Image, mappings: list[ImageMappingView]) -> ImageView:
    return ImageView(
        id=img.id,
        name=img.name,
        status=img.status,
        visibility=img.visibility,
        min_disk=img.min_disk,
        min_ram=img.min_ram,
        created_at=img.created_at,
        updated_at=img.updated_at,
        mappings=mappings,
    )


async def _one(s: AsyncSession, image_id: str) -> ImageView:
    img = await s.get(Image, image_id)
    if img is None:
        raise NotFound(f"Image {image_id} could not be found.")
    return _view(img, (await _mappings(s, [img.id])).get(img.id, []))


@router.get("/images", summary="List images with their per-cloud mappings, by name")
async def list_images(
    request: Request,
    s: ReadSessionDep,
    settings: SettingsDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    marker: MarkerQuery = None,
) -> Page[ImageView]:
    q = select(Image).order_by(Image.name, Image.id).limit(limit + 1)
    if marker is not None:
        last = await s.get(Image, marker) if could_be_id(marker) else None
        if last is None:
            raise InvalidRequest(f"marker [{marker}] not found")
        q = q.where(or_(Image.name > last.name, and_(Image.name == last.name, Image.id > last.id)))
    rows = list((await s.execute(q)).scalars())
    kept, nxt = paginate(request, settings, rows, limit, lambda i: i.id)
    maps = await _mappings(s, [i.id for i in kept])
    return Page[ImageView](items=[_view(i, maps.get(i.id, [])) for i in kept], next=nxt)


@router.get("/images/{image_id}", summary="Show one image")
async def show_image(image_id: str, s: ReadSessionDep) -> ImageView:
    if not could_be_id(image_id):
        raise NotFound(f"Image {image_id} could not be found.")
    return await _one(s, image_id)


@router.post("/images", status_code=201, summary="Register an image and its mappings")
async def register_image(body: ImageCreate, s: SessionDep, clock: ClockDep) -> ImageView:
    img = await images_service.register(
        s,
        name=body.name,
        mapping=body.map,
        now=clock.now(),
        image_id=str(body.id) if body.id else None,
    )
    wake_after_commit(s)  # servers waiting for this image on some cloud may now fit
    return await _one(s, img.id)


@router.put("/images/{image_id}/map/{cloud}", summary="Map an image onto one cloud")
async def map_image(
    image_id: str, cloud: str, body: ImageMapUpdate, s: SessionDep, clock: ClockDep
) -> ImageView:
    img = await s.get(Image, image_id) if could_be_id(image_id) else None
    if img is None:
        raise NotFound(f"Image {image_id} could not be found.")
    if not could_be_cloud(cloud) or await s.get(Cloud, cloud) is None:
        raise NotFound(f"Cloud {cloud} could not be found.")
    mapping = await s.get(ImageMapping, (cloud, image_id))
    if mapping is None:
        s.add(ImageMapping(cloud=cloud, image_id=image_id, remote_image=body.remote_image))
    else:
        mapping.remote_image = body.remote_image
    img.updated_at = clock.now()
    await s.flush()
    wake_after_commit(s)
    return await _one(s, image_id)
