"""Heat's software configs API (`openstack software config create/list/show/delete`):
configs made through it, kept in their own table (a stack's configs are its resources).

Create answers 200 with the config, as Heat does; delete 204, or 409 while a deployment
references the config. Readers read, members write; another project's config is 404.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response

from canopy.api.deps import ClockDep, ReadSessionDep, SessionDep
from canopy.api.orchestration.common import ScopeDep, WriterScopeDep
from canopy.domain.errors import InvalidRequest
from canopy.orchestration.software_checks import config_fields
from canopy.orchestration.software_rows import (
    config_view,
    delete_config,
    get_config,
    list_configs,
    new_config,
)

router = APIRouter()
JsonBody = Annotated[dict[str, Any], Body()]
MAX_LIMIT_DIGITS = 9


def _limit(value: str | None) -> int | None:
    if value is None:
        return None
    if len(value) > MAX_LIMIT_DIGITS or not value.strip().lstrip("-").isdigit():
        raise InvalidRequest("Only integer is acceptable by 'limit'.")
    n = int(value)
    if n < 0:
        raise InvalidRequest("Value must be >= 0 for field 'limit'.")
    return n


@router.get("/software_configs", summary="List the project's software configs")
async def list_software_configs(
    request: Request, ctx: ScopeDep, s: ReadSessionDep
) -> dict[str, Any]:
    """Heat's index: id, name, group and creation time, newest first (`limit`, `marker`)."""
    q = request.query_params
    rows = await list_configs(s, ctx.project_id, _limit(q.get("limit")), q.get("marker"))
    return {"software_configs": [config_view(r, detail=False) for r in rows]}


@router.post("/software_configs", status_code=200, summary="Create a software config")
async def create_software_config(
    body: JsonBody, ctx: WriterScopeDep, s: SessionDep, clock: ClockDep
) -> dict[str, Any]:
    row = new_config(ctx.project_id, config_fields(body), clock.now())
    s.add(row)
    await s.flush()
    return {"software_config": config_view(row)}


@router.get("/software_configs/{config_id}", summary="Show a software config")
async def show_software_config(config_id: str, ctx: ScopeDep, s: ReadSessionDep) -> dict[str, Any]:
    return {"software_config": config_view(await get_config(s, ctx.project_id, config_id))}


@router.delete("/software_configs/{config_id}", status_code=204, summary="Delete a software config")
async def delete_software_config(config_id: str, ctx: WriterScopeDep, s: SessionDep) -> Response:
    await delete_config(s, ctx.project_id, config_id)
    return Response(status_code=204)
