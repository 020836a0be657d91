"""Query-string handling shared by Nova resources: Nova's rules, not FastAPI's.

Nova accepts repeated parameters (the first one counts), ignores unknown ones until
microversion 2.75 and refuses them from 2.75 on (`additionalProperties: false`).
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import Request

from canopy.api.compute.microversion import APIVersion
from canopy.domain.errors import InvalidRequest

STRICT_SINCE = 75  # microversion from which unknown query parameters are a 400


def query(request: Request) -> dict[str, list[str]]:
    """Every query parameter with all its values, in order."""
    out: dict[str, list[str]] = {}
    for k, v in request.query_params.multi_items():
        out.setdefault(k, []).append(v)
    return out


def reject_unknown(
    params: dict[str, list[str]], allowed: Iterable[str], version: APIVersion, since: int = 75
) -> None:
    """400 for parameters outside `allowed` at microversion 2.`since` and later."""
    if not version.at_least(since):
        return
    extra = sorted(set(params) - set(allowed))
    if extra:
        shown = ", ".join(repr(e) for e in extra)
        verb = "was" if len(extra) == 1 else "were"
        raise InvalidRequest(
            f"Invalid input for query parameters {', '.join(extra)}. Value: {extra[0]}. "
            f"Additional properties are not allowed ({shown} {verb} unexpected)"
        )


def first(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[0] if values else None


def non_negative(params: dict[str, list[str]], name: str) -> int | None:
    """A parameter that must be an integer >= 0 (Nova's `non_negative_integer`)."""
    raw = first(params, name)
    if raw is None:
        return None
    if not raw.isdigit():
        raise InvalidRequest(
            f"Invalid input for query parameters {name}. Value: {raw}. "
            f"'{raw}' does not match '^[0-9]*$'"
        )
    return int(raw)
