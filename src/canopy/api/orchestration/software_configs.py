"""Heat's software configs API (`openstack software config create/list/show/delete`):
configs made through it, kept in their own table (a stack's configs are its resources).

Create answers 200 with the config, as Heat does; delete 204, or 409 while a deployment
references the config. A stack's configs (its config resources, its deployments' derived
configs) are shown by id but not listed, and go only with their stack (409). Readers
read, members write; another project's config is 404.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.api.deps import ClockDep, ReadSessionDep, SessionDep
from canopy.api.orchestration.common import ScopeDep, WriterScopeDep
from canopy.domain.errors import Conflict, InvalidRequest, NotFound
from canopy.orchestration.resources.deployment_config import stack_config_view
from canopy.orchestration.resources.software_deployment import project_deployments
from canopy.orchestration.software_checks import config_fields
from canopy.orchestration.software_rows import (
    MAX_ID,
    config_view,
    delete_config,
    find_config,
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


async def _stack_made(s: AsyncSession, project_id: str, config_id: str) -> dict[str, Any] | None:
    """A config of the project's stacks: a config resource, or a config a stack's
    deployment derived (what `software deployment show --long` looks up)."""
    if len(config_id) > MAX_ID:
        return None
    view = await stack_config_view(s, project_id, config_id)
    if view is not None:
        return view
    for row in await project_deployments(s, project_id):
        derived = row.data["sd"]["config"]
        if derived.get("id") == config_id:
            return dict(derived)
    return None


@router.get("/software_configs/{config_id}", summary="Show a software config")
async def show_software_config(config_id: str, ctx: ScopeDep, s: ReadSessionDep) -> dict[str, Any]:
    """The project's config made through the API, or one of its stacks' (as Heat, whose
    stacks' configs are in the same table)."""
    row = await find_config(s, ctx.project_id, config_id)
    if row is not None:
        return {"software_config": config_view(row)}
    view = await _stack_made(s, ctx.project_id, config_id)
    if view is None:
        raise NotFound(f"Software config with id {config_id[:MAX_ID]} not found")
    return {"software_config": view}


@router.delete("/software_configs/{config_id}", status_code=204, summary="Delete a software config")
async def delete_software_config(config_id: str, ctx: WriterScopeDep, s: SessionDep) -> Response:
    """204; 409 for a config a deployment references or one of a stack's (it goes with
    its stack)."""
    mine = await find_config(s, ctx.project_id, config_id)
    if mine is None and await _stack_made(s, ctx.project_id, config_id) is not None:
        raise Conflict(f"Software config {config_id} is a stack's: it goes with its stack.")
    await delete_config(s, ctx.project_id, config_id)
    return Response(status_code=204)
