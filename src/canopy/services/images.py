"""Canopy-wide images: registering them with their per-cloud ids, and searching them.

An image boots on a cloud where it is mapped (`ImageMapping`: the cloud's own id for it),
and on any cloud whose driver boots canopy's image ids unmapped (`Cloud.any_image`, from
its inventory). Searching follows Glance v2's list semantics:
filters, visibility, sort keys and marker paging (see api/image).
"""

from __future__ import annotations

import uuid
import zlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, bindparam, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.domain.context import RequestContext
from canopy.domain.errors import Conflict, InvalidRequest, NotFound
from canopy.store.models import Cloud, Image, ImageMapping

MAX_NAME = 255
# The admin API's registration takes the same lock (api/admin/images.py).
_REGISTER_LOCK = zlib.crc32(b"canopy:images:register")
# Glance's sort keys. `size` is accepted and has no effect: canopy knows no image sizes.
SORT_KEYS = ("name", "status", "container_format", "disk_format", "size", "id", "created_at",
             "updated_at")  # fmt: skip
_COLUMNS: dict[str, Any] = {
    "name": Image.name,
    "status": Image.status,
    "container_format": Image.container_format,
    "disk_format": Image.disk_format,
    "id": Image.id,
    "created_at": Image.created_at,
    "updated_at": Image.updated_at,
}


@dataclass(frozen=True, slots=True)
class Location:
    """Where an image boots: the cloud and the image's id there."""

    cloud: str
    remote_image: str
    implicit: bool  # a cloud booting it by canopy id, with no explicit mapping


@dataclass(slots=True)
class ImageQuery:
    """A Glance-style search. Each `where` entry is already a SQL condition."""

    where: list[ColumnElement[bool]] = field(default_factory=list)
    visibility: str | None = None  # None: Glance's default (public and own private)
    sort: list[tuple[str, str]] = field(default_factory=lambda: [("created_at", "desc")])
    limit: int = 25
    marker: str | None = None
    nothing: bool = False  # a filter no canopy image can match (e.g. an image property)


def could_be_id(value: str) -> bool:
    return 0 < len(value) <= 64 and "\x00" not in value


def visible(ctx: RequestContext) -> ColumnElement[bool]:
    """The images the caller can see and name: public and community ones, its project's own
    (private or shared: canopy keeps no image members), and every one for a cloud admin.
    `find` keeps the same conditions with the project bound (`_MEMBER_SEES`)."""
    if ctx.is_cloud_admin:
        return Image.id.is_not(None)
    return or_(Image.visibility.in_(("public", "community")), Image.owner == ctx.project_id)


def _default_listing(ctx: RequestContext) -> ColumnElement[bool]:
    """Glance's list without a visibility filter: public, and the caller's own images."""
    if ctx.is_cloud_admin:
        return Image.visibility != "community"
    return or_(Image.visibility == "public", Image.owner == ctx.project_id)


async def get(s: AsyncSession, ctx: RequestContext, image_id: str) -> Image:
    img = await s.get(Image, image_id) if could_be_id(image_id) else None
    if img is None or not (
        ctx.is_cloud_admin
        or img.visibility in ("public", "community")
        or img.owner == ctx.project_id
    ):
        raise NotFound(f"No image found with ID {image_id}")
    return img


# A boot's look-ups, built once for a member and once for a cloud admin (`visible`'s two
# conditions, the project bound): building them and their cache keys cost about 0.2 ms of
# every create's CPU, under SQLite's one write lock (services/server_statements.py).
_MEMBER_SEES = or_(
    Image.visibility.in_(("public", "community")), Image.owner == bindparam("project")
)
_BY_ID: dict[bool, Select[Image]] = {
    False: select(Image).where(Image.id == bindparam("ref"), _MEMBER_SEES),
    True: select(Image).where(Image.id == bindparam("ref")),
}
_BY_NAME: dict[bool, Select[Image]] = {
    False: select(Image).where(Image.name == bindparam("ref"), _MEMBER_SEES).limit(2),
    True: select(Image).where(Image.name == bindparam("ref")).limit(2),
}


async def find(s: AsyncSession, ctx: RequestContext, ref: str) -> Image | None:
    """The image `ref` names for a boot (its id, else its name), among the images the caller
    can see (`visible`): another project's private image is not found, exactly as a
    missing one is. InvalidRequest when the name is ambiguous."""
    admin = ctx.is_cloud_admin
    values = {"ref": ref} if admin else {"ref": ref, "project": ctx.project_id}
    if could_be_id(ref):
        image = await s.scalar(_BY_ID[admin], values)
        if image is not None:
            return image
    matches = list((await s.execute(_BY_NAME[admin], values)).scalars())
    if len(matches) > 1:
        raise InvalidRequest(f"More than one image is named {ref}; use its id.")
    return matches[0] if matches else None


async def search(s: AsyncSession, ctx: RequestContext, q: ImageQuery) -> list[Image]:
    """One page of images matching `q`, in its sort order, after `q.marker`."""
    if q.nothing or q.limit == 0:
        return []
    conds: list[ColumnElement[bool]] = [visible(ctx), Image.status != "killed", *q.where]
    if q.visibility is None:
        conds.append(_default_listing(ctx))
    elif q.visibility != "all":
        conds.append(Image.visibility == q.visibility)
    keys = [(k, d) for k, d in q.sort if k in _COLUMNS]
    tiebreak = keys[0][1] if keys else "desc"
    for extra in ("created_at", "id"):
        if all(k != extra for k, _ in keys):
            keys.append((extra, tiebreak))
    stmt = select(Image).where(*conds)
    if q.marker is not None:
        try:
            last = await get(s, ctx, q.marker)
        except NotFound:
            raise InvalidRequest(f"Marker {q.marker} could not be found.") from None
        stmt = stmt.where(_after(last, keys))
    order = [_COLUMNS[k].asc() if d == "asc" else _COLUMNS[k].desc() for k, d in keys]
    stmt = stmt.order_by(*order).limit(q.limit)
    return list((await s.execute(stmt)).scalars())


def _after(last: Image, keys: Sequence[tuple[str, str]]) -> ColumnElement[bool]:
    """Rows strictly after `last` in the order `keys` (a keyset condition)."""
    arms: list[ColumnElement[bool]] = []
    for i, (key, direction) in enumerate(keys):
        col = _COLUMNS[key]
        value = getattr(last, key)
        same = [_COLUMNS[k] == getattr(last, k) for k, _ in keys[:i]]
        beyond = col > value if direction == "asc" else col < value
        arms.append(and_(*same, beyond))
    return or_(*arms) if arms else false()


async def locations(s: AsyncSession, images: Sequence[Image]) -> dict[str, list[Location]]:
    """Per image, the enabled clouds it boots on, by cloud name."""
    out: dict[str, list[Location]] = defaultdict(list)
    if not images:
        return out
    clouds = list(
        (
            await s.execute(select(Cloud).where(Cloud.enabled.is_(True)).order_by(Cloud.name))
        ).scalars()
    )
    rows = await s.execute(
        select(ImageMapping).where(ImageMapping.image_id.in_([i.id for i in images]))
    )
    mapped = {(m.image_id, m.cloud): m.remote_image for m in rows.scalars()}
    for img in images:
        for c in clouds:
            remote = mapped.get((img.id, c.name))
            if remote is not None:
                out[img.id].append(Location(c.name, remote, implicit=False))
            elif c.any_image:
                out[img.id].append(Location(c.name, img.id, implicit=True))
    return out


async def register(
    s: AsyncSession,
    *,
    name: str,
    mapping: Mapping[str, str],
    now: datetime,
    image_id: str | None = None,
) -> Image:
    """Add an image and its per-cloud ids; names and ids are unique."""
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise InvalidRequest(f"An image name must be 1 to {MAX_NAME} printable characters.")
    if image_id is not None:
        try:
            image_id = str(uuid.UUID(image_id))
        except ValueError:
            raise InvalidRequest(f"Image id {image_id!r} is not a UUID.") from None
    for cloud, remote in mapping.items():
        if not remote or len(remote) > MAX_NAME:
            raise InvalidRequest(f"The image id on cloud {cloud!r} must be 1 to 255 characters.")
    if s.get_bind().dialect.name == "postgresql":
        # The same lock as the admin API's registration: one name, one image.
        await s.execute(select(func.pg_advisory_xact_lock(_REGISTER_LOCK)))
    known = set((await s.execute(select(Cloud.name))).scalars())
    unknown = sorted(set(mapping) - known)
    if unknown:
        raise InvalidRequest(
            f"Invalid input for field/attribute map: unknown cloud(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(known)) or 'none'}."
        )
    image_id = image_id or str(uuid.uuid4())
    if await s.get(Image, image_id) is not None:
        raise Conflict(f"An image with id {image_id} already exists.")
    dup = await s.execute(select(Image.id).where(Image.name == name).limit(1))
    if dup.scalar_one_or_none() is not None:
        raise Conflict(f"An image named {name!r} already exists.")
    img = Image(
        id=image_id,
        name=name,
        status="active",
        visibility="public",
        owner=None,
        min_disk=0,
        min_ram=0,
        disk_format="qcow2",
        container_format="bare",
        created_at=now,
        updated_at=now,
    )
    s.add(img)
    await s.flush()
    for cloud, remote in sorted(mapping.items()):
        s.add(ImageMapping(cloud=cloud, image_id=image_id, remote_image=remote))
    await s.flush()
    return img
