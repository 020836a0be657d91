"""Heat's software deployments API (`openstack software deployment create/list/show/delete`,
`metadata show`, `output show`): the deployments made through it (their own table) and
those a stack made (its deployment resources, software_deployment.py keeps them on their
rows), listed and shown together.

Create and update answer 200 with the deployment, as Heat does; delete 204. A stack's
deployment is shown but changes only with its stack: PUT or DELETE on one is 409. Readers
read, members write; another project's deployment is 404, and so is its config named as
`config_id` (400, Heat's "Config with id ... not found").
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.api.deps import ClockDep, ReadSessionDep, SessionDep
from canopy.api.orchestration.common import ScopeDep, WriterScopeDep
from canopy.domain.errors import Conflict, InvalidRequest, NotFound
from canopy.orchestration.resources.software_deployment import (
    deployment_view,
    project_deployments,
    server_deployments,
)
from canopy.orchestration.software_checks import create_fields, update_fields
from canopy.orchestration.software_rows import (
    MAX_ID,
    deployable_config,
    find_deployment,
    list_deployments,
)
from canopy.orchestration.software_rows import deployment_view as api_view
from canopy.store.models import SoftwareDeploymentRow

router = APIRouter()
JsonBody = Annotated[dict[str, Any], Body()]
MAX_SERVER_ID = 255


def _not_found(deployment_id: str) -> NotFound:
    return NotFound(f"Deployment with id {deployment_id[:MAX_ID]} not found")


async def _stack_made(
    s: AsyncSession, project_id: str, deployment_id: str
) -> dict[str, Any] | None:
    for row in await project_deployments(s, project_id):
        view = deployment_view(row)
        if view["id"] == deployment_id:
            return view
    return None


async def _own(s: AsyncSession, project_id: str, deployment_id: str) -> SoftwareDeploymentRow:
    """An API-made deployment to change; a stack's is 409, none 404."""
    row = await find_deployment(s, project_id, deployment_id)
    if row is not None:
        return row
    if await _stack_made(s, project_id, deployment_id) is not None:
        raise Conflict(
            f"Deployment {deployment_id} is a stack's resource: it changes with its stack."
        )
    raise _not_found(deployment_id)


@router.get("/software_deployments", summary="List the project's software deployments")
async def list_software_deployments(
    request: Request, ctx: ScopeDep, s: ReadSessionDep
) -> dict[str, Any]:
    """Heat's index: every deployment of the project, or those to `server_id`, oldest
    first (its stacks' and the API's)."""
    server_id = request.query_params.get("server_id")
    if server_id is not None and len(server_id) > MAX_SERVER_ID:
        raise InvalidRequest(f"server_id is at most {MAX_SERVER_ID} characters.")
    found = [deployment_view(r) for r in await project_deployments(s, ctx.project_id, server_id)]
    found += [api_view(r) for r in await list_deployments(s, ctx.project_id, server_id)]
    found.sort(key=lambda d: str(d["creation_time"]))
    return {"software_deployments": found}


@router.get(
    "/software_deployments/metadata/{server_id}",
    summary="The deployments' configs of one server (what its agent reads)",
)
async def server_metadata(server_id: str, ctx: ScopeDep, s: ReadSessionDep) -> dict[str, Any]:
    """Heat's `metadata_software_deployments`: the configs deployed to the server, ordered
    by config name ([] for a server with none)."""
    return {"metadata": await server_deployments(s, ctx.project_id, server_id)}


@router.post("/software_deployments", status_code=200, summary="Create a software deployment")
async def create_software_deployment(
    body: JsonBody, ctx: WriterScopeDep, s: SessionDep, clock: ClockDep
) -> dict[str, Any]:
    fields = create_fields(body)
    await deployable_config(s, ctx.project_id, fields["config_id"])
    row = SoftwareDeploymentRow(
        id=str(uuid.uuid4()),
        project_id=ctx.project_id,
        created_at=clock.now(),
        updated_at=None,
        **{"status_reason": "", **fields},
    )
    s.add(row)
    await s.flush()
    return {"software_deployment": api_view(row)}


@router.get("/software_deployments/{deployment_id}", summary="Show a software deployment")
async def show_software_deployment(
    deployment_id: str, ctx: ScopeDep, s: ReadSessionDep
) -> dict[str, Any]:
    row = await find_deployment(s, ctx.project_id, deployment_id)
    if row is not None:
        return {"software_deployment": api_view(row)}
    view = await _stack_made(s, ctx.project_id, deployment_id)
    if view is None:
        raise _not_found(deployment_id)
    return {"software_deployment": view}


@router.put(
    "/software_deployments/{deployment_id}",
    status_code=200,
    summary="Update a software deployment (its state, outputs, config)",
)
async def update_software_deployment(
    deployment_id: str, body: JsonBody, ctx: WriterScopeDep, s: SessionDep, clock: ClockDep
) -> dict[str, Any]:
    fields = update_fields(body)
    row = await _own(s, ctx.project_id, deployment_id)
    if "config_id" in fields:
        await deployable_config(s, ctx.project_id, fields["config_id"])
    for key, value in fields.items():
        setattr(row, key, value)
    row.updated_at = clock.now()
    await s.flush()
    return {"software_deployment": api_view(row)}


@router.delete(
    "/software_deployments/{deployment_id}",
    status_code=204,
    summary="Delete a software deployment",
)
async def delete_software_deployment(
    deployment_id: str, ctx: WriterScopeDep, s: SessionDep
) -> Response:
    await s.delete(await _own(s, ctx.project_id, deployment_id))
    return Response(status_code=204)
