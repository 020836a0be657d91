"""`GET /stacks`: Heat's filters, sort keys, limit and marker."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import QueryParams

from canopy.domain.context import RequestContext
from canopy.domain.errors import Forbidden, InvalidRequest, NotFound
from canopy.store.models import Stack

SORT_KEYS = {
    "stack_name": Stack.name,
    "name": Stack.name,
    "stack_status": Stack.status,
    "status": Stack.status,
    "creation_time": Stack.created_at,
    "created_at": Stack.created_at,
    "updated_time": Stack.updated_at,
    "updated_at": Stack.updated_at,
}
MAX_LIMIT = 1000


def _flag(q: QueryParams, key: str) -> bool:
    """A boolean query parameter as Heat reads it (param_utils.extract_bool): absent is
    false; present, it must be true or false (any case), or the request is a 400."""
    if key not in q:
        return False
    value = q[key]
    if value.lower() not in ("true", "false"):
        raise InvalidRequest(
            f'Unrecognized value "{value[:255]}" for "{key}", acceptable values are: true, false.'
        )
    return value.lower() == "true"


def _status_filter(values: list[str]) -> ColumnElement[bool]:
    terms = []
    for v in values:
        if "_" in v and v.rsplit("_", 1)[0] not in ("IN",):
            action, status = v.split("_", 1)
            terms.append(and_(Stack.action == action, Stack.status == status))
        else:
            terms.append(Stack.status == v)
    return or_(*terms)


async def list_query(s: AsyncSession, ctx: RequestContext, q: QueryParams) -> list[Stack]:
    query = select(Stack)
    if _flag(q, "global_tenant"):
        if not ctx.is_cloud_admin:
            raise Forbidden("Only a cloud admin may list every project's stacks.")
    else:
        query = query.where(Stack.project_id == ctx.project_id)
    if not _flag(q, "show_deleted"):
        query = query.where(Stack.deleted.is_(False))
    if not _flag(q, "show_nested"):
        query = query.where(Stack.owner_id.is_(None))  # Heat lists nested stacks on request
    _flag(q, "show_hidden")  # checked as Heat checks it; canopy hides no stacks
    if q.get("with_count"):
        _flag(q, "with_count")
    names = q.getlist("stack_name") + q.getlist("name")
    if names:
        query = query.where(Stack.name.in_(names))
    if q.getlist("id"):
        query = query.where(Stack.id.in_(q.getlist("id")))
    if q.getlist("status"):
        query = query.where(_status_filter(q.getlist("status")))
    if q.getlist("action"):
        query = query.where(Stack.action.in_(q.getlist("action")))
    keys = [k for raw in q.getlist("sort_keys") for k in raw.split(",") if k]
    for k in keys:
        if k not in SORT_KEYS:
            raise InvalidRequest(
                f"Sortkey {k!r} is not supported; use one of "
                + ", ".join(sorted(set(SORT_KEYS)))
                + "."
            )
    direction = (q.get("sort_dir") or "desc").lower()
    if direction not in ("asc", "desc"):
        raise InvalidRequest("sort_dir must be asc or desc.")
    columns = [SORT_KEYS[k] for k in keys] or [Stack.created_at]
    order: list[Any] = [c.asc() if direction == "asc" else c.desc() for c in columns]
    order.append(Stack.id.asc() if direction == "asc" else Stack.id.desc())
    query = query.order_by(*order)
    # A project's stacks are few (each is a deployment): tags and the marker are applied
    # to the sorted list rather than in SQL.
    stacks = list((await s.execute(query)).scalars())
    stacks = [x for x in stacks if _tags_match(q, set(x.tags or []))]
    marker = q.get("marker")
    if marker:
        ids = [x.id for x in stacks]
        if marker not in ids:
            raise NotFound(f"The Stack ({marker[:64]}) could not be found (marker).")
        stacks = stacks[ids.index(marker) + 1 :]
    limit = q.get("limit")
    if limit is not None:
        try:
            n = int(limit)
        except ValueError:
            raise InvalidRequest("limit must be a whole number.") from None
        if n < 0:
            raise InvalidRequest("limit must not be negative.")
        stacks = stacks[: min(n, MAX_LIMIT)]
    return stacks


def _tags_match(q: QueryParams, have: set[str]) -> bool:
    """Heat's four tag filters, each a comma-separated list: `tags` (has all of them),
    `tags_any` (has one), `not_tags` (lacks one of them), `not_tags_any` (has none)."""

    def wanted(key: str) -> set[str]:
        return {t for raw in q.getlist(key) for t in raw.split(",") if t}

    tags, any_, not_all, not_any = (
        wanted(k) for k in ("tags", "tags_any", "not_tags", "not_tags_any")
    )
    return (
        (not tags or tags <= have)
        and (not any_ or bool(any_ & have))
        and (not not_all or not not_all <= have)
        and (not not_any or not not_any & have)
    )
