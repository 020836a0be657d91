"""Marker pagination for list endpoints: `limit` and `marker` in, `{items, next}` out."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Generic, TypeVar

from fastapi import Query, Request
from pydantic import BaseModel, Field

from canopy.config import Settings

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100

T = TypeVar("T")
R = TypeVar("R")

LimitQuery = Annotated[
    int, Query(ge=1, le=MAX_LIMIT, description=f"Items per page (1..{MAX_LIMIT}).")
]
MarkerQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=255,
        description="The id of the last item of the previous page; the page starts after it.",
    ),
]


class Page(BaseModel, Generic[T]):
    """One page of a list, newest first unless the endpoint says otherwise."""

    items: list[T]
    next: str | None = Field(description="URL of the next page; null on the last page.")


def next_url(request: Request, settings: Settings, marker: str) -> str:
    """This request's URL with `marker` replaced, based on the public URL when one is set."""
    url = request.url.include_query_params(marker=marker)
    if settings.api.public_url:
        return f"{settings.public_url}{url.path}?{url.query}"
    return str(url)


def paginate(
    request: Request,
    settings: Settings,
    rows: Sequence[R],
    limit: int,
    marker: Callable[[R], str],
) -> tuple[list[R], str | None]:
    """Trim `rows` (fetched with `limit + 1`) to `limit`; the next page's URL if more remain."""
    if len(rows) <= limit:
        return list(rows), None
    kept = list(rows[:limit])
    return kept, next_url(request, settings, marker(kept[-1]))
