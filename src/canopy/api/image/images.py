"""Glance v2 images, read-only: `GET /v2/images` (filters, sort, paging) and
`GET /v2/images/{id}`.

Queries follow Glance: `name`, `id`, `status`, `container_format`, `disk_format` take
`in:a,b` (with "double-quoted" values holding commas) or an exact value; `created_at` and
`updated_at` take `gt:|gte:|lt:|lte:|eq:|neq:` and an ISO 8601 time; any other key is an
image property filter, which no canopy image has. The first page holds 25 images by default
and `next` links the following page, marker-paged by image id.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.api.auth import AuthDep
from canopy.api.deps import ReadSessionDep
from canopy.domain.context import RequestContext
from canopy.domain.errors import InvalidRequest
from canopy.services import images as image_service
from canopy.services.images import SORT_KEYS, ImageQuery, Location
from canopy.store.models import Image

router = APIRouter()

DEFAULT_LIMIT = 25  # Glance's limit_param_default
MAX_LIMIT = 1000  # Glance's api_limit_max
VISIBILITIES = ("community", "public", "private", "shared", "all")
MEMBER_STATUSES = ("pending", "accepted", "rejected", "all")
_LIST_FILTERS = {
    "name": Image.name,
    "id": Image.id,
    "status": Image.status,
    "container_format": Image.container_format,
    "disk_format": Image.disk_format,
}
_TIME_FILTERS = {"created_at": Image.created_at, "updated_at": Image.updated_at}


def isotime(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def image_view(img: Image, locations: list[Location] | None = None) -> dict[str, Any]:
    """An image as Glance shows it; `locations` (admins only) adds `canopy_locations`."""
    body: dict[str, Any] = {
        "id": img.id,
        "name": img.name,
        "status": img.status,
        "visibility": img.visibility,
        "protected": False,
        "os_hidden": False,
        "checksum": None,
        "os_hash_algo": None,
        "os_hash_value": None,
        "owner": img.owner,
        "size": None,
        "virtual_size": None,
        "container_format": img.container_format,
        "disk_format": img.disk_format,
        "min_disk": img.min_disk,
        "min_ram": img.min_ram,
        "created_at": isotime(img.created_at),
        "updated_at": isotime(img.updated_at),
        "tags": [],
        "self": f"/v2/images/{img.id}",
        "file": f"/v2/images/{img.id}/file",
        "schema": "/v2/schemas/image",
    }
    if locations is not None:
        body["canopy_locations"] = [
            {"cloud": loc.cloud, "remote_image": loc.remote_image, "implicit": loc.implicit}
            for loc in locations
        ]
    return body


def split_operator(expression: str) -> tuple[str, str]:
    """`op:value` -> (op, value); an ISO time or a value with no colon is an equality."""
    left, sep, right = expression.partition(":")
    if not sep:
        return "eq", expression
    try:
        _parse_time(expression)
        return "eq", expression
    except ValueError:
        return left, right


def split_values(value: str) -> list[str]:
    """The comma-separated values of an `in:` filter; "double quotes" keep commas inside."""
    items: list[str] = []
    i, n = 0, len(value)
    while i < n:
        if value[i] == '"':
            j, buf = i + 1, []
            while j < n and value[j] != '"':
                if value[j] == "\\" and j + 1 < n:
                    j += 1
                buf.append(value[j])
                j += 1
            if j >= n:
                raise InvalidRequest(f"Invalid filter value {value}. The quote is not closed.")
            j += 1
            if j < n and value[j] != ",":
                raise InvalidRequest(
                    f"Invalid filter value {value}. There is no comma after closing quotation mark."
                )
            items.append("".join(buf))
        else:
            j = value.find(",", i)
            j = n if j < 0 else j
            part = value[i:j]
            if '"' in part:
                raise InvalidRequest(
                    f"Invalid filter value {value}. There is no comma before opening quotation "
                    "mark."
                )
            items.append(part)
        i = j + 1
    return items


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.strip())
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _compare(col: Any, op: str, value: Any) -> ColumnElement[bool]:
    comparisons: dict[str, ColumnElement[bool]] = {
        "eq": col == value,
        "neq": col != value,
        "lt": col < value,
        "lte": col <= value,
        "gt": col > value,
        "gte": col >= value,
    }
    if op not in comparisons:
        raise InvalidRequest(f"Unable to filter by unknown operator '{op}'.")
    return comparisons[op]


def _limit(raw: str) -> int:
    try:
        limit = int(raw)
    except ValueError:
        raise InvalidRequest("limit param must be an integer") from None
    if limit < 0:
        raise InvalidRequest("limit param must be positive")
    return min(limit, MAX_LIMIT)


def _sort(params: dict[str, list[str]]) -> list[tuple[str, str]]:
    """Glance's two sort syntaxes: `sort=k1:asc,k2` or `sort_key=k1&sort_dir=asc`."""

    def key(k: str) -> str:
        k = k.strip()
        if k not in SORT_KEYS:
            raise InvalidRequest(
                f"Invalid sort key: {k}. It must be one of the following: {', '.join(SORT_KEYS)}."
            )
        return k

    def direction(d: str) -> str:
        d = d.strip()
        if d not in ("asc", "desc"):
            raise InvalidRequest(f"Invalid sort direction: {d}")
        return d

    if "sort" in params:
        if "sort_key" in params or "sort_dir" in params:
            raise InvalidRequest("Old and new sorting syntax cannot be combined")
        out = []
        for part in params["sort"][-1].strip().split(","):
            k, _, d = part.partition(":")
            out.append((key(k), direction(d) if d else "desc"))
        return out
    keys = [key(k) for k in params.get("sort_key", [])] or ["created_at"]
    dirs = [direction(d) for d in params.get("sort_dir", [])] or ["desc"]
    if len(dirs) > 1 and len(dirs) != len(keys):
        raise InvalidRequest("Number of sort dirs does not match the number of sort keys")
    if len(dirs) == 1:
        dirs = dirs * len(keys)
    return list(zip(keys, dirs, strict=False))


def parse_query(request: Request) -> ImageQuery:
    """An ImageQuery from Glance's list parameters; 400 for what Glance refuses."""
    params: dict[str, list[str]] = {}
    for k, v in request.query_params.multi_items():
        params.setdefault(k, []).append(v)
    q = ImageQuery(limit=DEFAULT_LIMIT)
    if "limit" in params:
        q.limit = _limit(params.pop("limit")[-1])
    if "marker" in params:
        q.marker = params.pop("marker")[-1]
    status = params.pop("member_status", ["accepted"])[-1]
    if status not in MEMBER_STATUSES:
        raise InvalidRequest(f"Invalid status: {status}")
    if params.pop("tag", []):
        q.nothing = True  # canopy images carry no tags
    q.sort = _sort(params)
    for k in ("sort", "sort_key", "sort_dir"):
        params.pop(k, None)
    if "changes-since" in params:
        raise InvalidRequest('The "changes-since" filter is no longer available on v2.')
    if "visibility" in params:
        visibility = params.pop("visibility")[-1]
        if visibility not in VISIBILITIES:
            raise InvalidRequest(f"Invalid visibility value: {visibility}")
        q.visibility = visibility
    for flag in ("os_hidden", "protected"):
        if flag in params:
            value = params.pop(flag)[-1].lower()
            if value not in ("true", "false"):
                raise InvalidRequest(
                    f"Invalid value '{value}' for '{flag}' filter. Valid values are 'true' or "
                    "'false'."
                )
            q.nothing |= value == "true"  # no canopy image is hidden or protected
    for name, values in params.items():
        value = values[-1]
        if "\x00" in value:
            q.nothing = True  # no stored value holds a NUL (PostgreSQL refuses them)
        elif name in _LIST_FILTERS:
            op, operand = split_operator(value)
            col = _LIST_FILTERS[name]
            if op == "in":
                q.where.append(col.in_(split_values(operand)))
            elif op == "eq":
                q.where.append(col == operand)
            else:
                raise InvalidRequest(f"Unable to filter by unknown operator '{op}'.")
        elif name in _TIME_FILTERS:
            op, operand = split_operator(value)
            try:
                moment = _parse_time(operand)
            except ValueError:
                raise InvalidRequest(
                    f'Bad "{name}" query filter format. Use ISO 8601 DateTime notation.'
                ) from None
            if op == "in":
                raise InvalidRequest(f"Unable to filter by unknown operator '{op}'.")
            q.where.append(_compare(_TIME_FILTERS[name], op, moment))
        elif name.endswith(("_min", "_max")):
            try:
                int(value)
            except ValueError:
                raise InvalidRequest(
                    "Unable to filter on a range with a non-numeric value."
                ) from None
            q.nothing = True  # sizes are unknown to canopy: no image is in any range
        elif name == "owner":
            q.where.append(Image.owner == value)
        elif name in ("min_ram", "min_disk"):
            size = Image.min_ram if name == "min_ram" else Image.min_disk
            try:
                q.where.append(size == int(value))
            except ValueError:
                q.nothing = True
        else:
            q.nothing = True  # checksum, hashes or an image property: none is set
    return q


def _links(request: Request, rows: list[Image], limit: int) -> dict[str, str]:
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "marker"]
    first = "/v2/images" + (f"?{urlencode(params)}" if params else "")
    out = {"first": first, "schema": "/v2/schemas/images"}
    if rows and len(rows) == limit:
        out["next"] = "/v2/images?" + urlencode([*params, ("marker", rows[-1].id)])
    return out


@router.get("/images", summary="List images (Glance v2)")
async def list_images(request: Request, ctx: AuthDep, s: ReadSessionDep) -> dict[str, Any]:
    q = parse_query(request)
    rows = await image_service.search(s, ctx, q)
    locs = await _locations(s, ctx, rows)
    return {
        "images": [image_view(i, locs.get(i.id, []) if locs is not None else None) for i in rows],
        **_links(request, rows, q.limit),
    }


@router.get("/images/{image_id}", summary="Show an image (Glance v2)")
async def show_image(image_id: str, ctx: AuthDep, s: ReadSessionDep) -> dict[str, Any]:
    img = await image_service.get(s, ctx, image_id)
    locs = await _locations(s, ctx, [img])
    return image_view(img, locs.get(img.id, []) if locs is not None else None)


async def _locations(
    s: AsyncSession, ctx: RequestContext, rows: list[Image]
) -> dict[str, list[Location]] | None:
    """Per-cloud locations, for admins only (the clouds behind canopy are theirs to know)."""
    if not ctx.is_cloud_admin:
        return None
    return await image_service.locations(s, rows)
