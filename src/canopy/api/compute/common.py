"""Shared pieces of the Nova front door: links, times, query strings and paging, as Nova has
them (nova/api/openstack/common.py), so clients that parse Nova's answers parse ours."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

from fastapi import Request

from canopy.config import Settings
from canopy.domain.errors import InvalidRequest
from canopy.store.models import FLAVOR_ID_LENGTH

COMPUTE = "/compute"
V21 = "/compute/v2.1"
MAX_LIMIT = 1000  # Nova's [api] max_limit
MAX_ID = 64


def base_url(request: Request, settings: Settings) -> str:
    """Where clients reach this server: the configured public URL, else the request's own
    scheme and host (so links work however the client got here, as Nova's do)."""
    if settings.api.public_url:
        return settings.public_url
    return f"{request.url.scheme}://{request.url.netloc}"


def compute_url(request: Request, settings: Settings) -> str:
    return base_url(request, settings) + V21


def links(
    request: Request, settings: Settings, collection: str, ident: str
) -> list[dict[str, str]]:
    """Nova's `self` (versioned) and `bookmark` (unversioned) links of one resource."""
    base = base_url(request, settings)
    return [
        {"rel": "self", "href": f"{base}{V21}/{collection}/{ident}"},
        {"rel": "bookmark", "href": f"{base}{COMPUTE}/{collection}/{ident}"},
    ]


def bookmark(request: Request, settings: Settings, collection: str, ident: str) -> str:
    return f"{base_url(request, settings)}{COMPUTE}/{collection}/{ident}"


def next_link(request: Request, settings: Settings, path: str, marker: str) -> dict[str, str]:
    """`{"rel": "next", "href": ...}`: this request's query (sorted, as Nova does) with the
    marker replaced, on `path` under /compute/v2.1."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "marker"]
    params.sort(key=lambda kv: kv[0])
    params.append(("marker", marker))
    return {
        "rel": "next",
        "href": f"{compute_url(request, settings)}/{path}?{urlencode(params)}",
    }


def page_links(
    request: Request,
    settings: Settings,
    path: str,
    items: Sequence[Any],
    limit: int,
    marker_of: Any,
) -> list[dict[str, str]]:
    """A next link when the page is full (Nova's rule: a full last page still gets one)."""
    if limit and len(items) == limit:
        return [next_link(request, settings, path, str(marker_of(items[-1])))]
    return []


# Times ----------------------------------------------------------------------------------


# Both render with datetime.isoformat (C, no format string to parse), the same text as
# strftime("%Y-%m-%dT%H:%M:%S...") for years 1000-9999; a time stored in UTC (all of
# canopy's) skips the conversion.


def isotime(dt: datetime | None) -> str | None:
    """Nova's `utils.isotime`: second precision, 'Z' (created, updated, fault.created)."""
    if dt is None:
        return None
    if dt.tzinfo is not UTC:
        dt = dt.astimezone(UTC)
    if dt.year < 1000:
        return dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return dt.isoformat(timespec="seconds")[:19] + "Z"


def perfect_time(dt: datetime | None) -> str | None:
    """How Nova serialises a raw datetime: naive UTC with microseconds (launched_at,
    instance action times)."""
    if dt is None:
        return None
    if dt.tzinfo is not UTC:
        dt = dt.astimezone(UTC)
    if dt.year < 1000:
        return dt.replace(tzinfo=None).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return dt.isoformat(timespec="microseconds")[:26]


def parse_isotime(name: str, value: str) -> datetime:
    """An ISO 8601 date-time from a query parameter; naive means UTC; else 400."""
    raw = value.strip()
    try:
        if len(raw) < 10 or raw[4] != "-":
            raise ValueError(raw)
        dt = datetime.fromisoformat(raw.replace("z", "Z"))
    except (ValueError, IndexError):
        raise InvalidRequest(
            f"Invalid input for query parameters {name}. Value: {value}. "
            f"'{value}' is not a 'date-time'"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


# Query strings --------------------------------------------------------------------------

_TRUE = frozenset({"1", "t", "true", "on", "y", "yes"})
_FALSE = frozenset({"0", "f", "false", "off", "n", "no"})


def bool_from_string(value: str | None, *, default: bool = False, strict: bool = False) -> bool:
    """oslo's `strutils.bool_from_string`."""
    if value is None:
        return default
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    if strict:
        raise InvalidRequest(
            f"Unrecognized value '{value}', acceptable values are: "
            "'0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'"
        )
    return default


def last(request: Request, name: str) -> str | None:
    """The last value of a query parameter (webob's MultiDict reading)."""
    values = request.query_params.getlist(name)
    return values[-1] if values else None


def limit_and_marker(request: Request) -> tuple[int, str | None]:
    """Nova's `get_limit_and_marker`: limit >= 0, capped at max_limit; 400 otherwise."""
    raw = last(request, "limit")
    limit = MAX_LIMIT
    if raw is not None:
        try:
            value = int(raw.strip())
        except ValueError:
            raise InvalidRequest(
                f"Invalid input for query parameters limit. Value: {raw}. "
                f"'{raw}' is not a 'non-negative integer'"
            ) from None
        if value < 0:
            raise InvalidRequest(
                f"Invalid input for query parameters limit. Value: {raw}. "
                f"{value} is less than the minimum of 0"
            )
        limit = min(value, MAX_LIMIT)
    return limit, last(request, "marker")


def reject_unknown(request: Request, known: frozenset[str]) -> None:
    """400 for query parameters outside `known` (Nova from 2.75)."""
    unknown = sorted({k for k in request.query_params if k not in known})
    if unknown:
        shown = ", ".join(repr(k) for k in unknown)
        verb = "were" if len(unknown) > 1 else "was"
        raise InvalidRequest(
            "Invalid input for query parameters: Additional properties are not allowed "
            f"({shown} {verb} unexpected)"
        )


def reject_nul_query(request: Request) -> None:
    """400 for a NUL character anywhere in the query string (no column can hold one)."""
    for key, value in request.query_params.multi_items():
        if "\x00" in key or "\x00" in value:
            raise InvalidRequest(
                f"Invalid input for query parameters {key!r}: NUL characters are not allowed."
            )


def nul_path(obj: Any, where: str = "") -> str | None:
    """The dotted path of the first string holding a NUL character in a JSON value."""
    if isinstance(obj, str):
        return where or "body" if "\x00" in obj else None
    if isinstance(obj, dict):
        for k, v in obj.items():
            here = f"{where}.{k}" if where else str(k)
            if "\x00" in str(k):
                return here
            found = nul_path(v, here)
            if found:
                return found
    if isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            found = nul_path(v, f"{where}[{i}]")
            if found:
                return found
    return None


def reject_nul_body(obj: Any) -> None:
    where = nul_path(obj)
    if where:
        raise InvalidRequest(
            f"Invalid input for field/attribute {where}: NUL characters are not allowed."
        )


def could_be_id(value: str) -> bool:
    """Whether `value` fits an id column (NUL and over-long values cannot match a row)."""
    return 0 < len(value) <= MAX_ID and "\x00" not in value


def could_be_flavor_id(value: str) -> bool:
    """`could_be_id` for flavors, whose ids are Nova's: up to 255 characters."""
    return 0 < len(value) <= FLAVOR_ID_LENGTH and "\x00" not in value


def host_id(project_id: str, host: str | None) -> str:
    """Nova's `generate_hostid`: sha224(project + host), or "" when there is no host."""
    if not host:
        return ""
    return _host_id(project_id, host)


@lru_cache(maxsize=1024)  # few (project, cloud) pairs: a page's entries share a handful
def _host_id(project_id: str, host: str) -> str:
    return hashlib.sha224((project_id + host).encode()).hexdigest()


def reservation_id(request_id: str) -> str:
    """A create request's reservation id, derived from its request id (and back again)."""
    return "r-" + request_id.removeprefix("req-")


def request_of_reservation(resv: str) -> str:
    return "req-" + resv.removeprefix("r-")
