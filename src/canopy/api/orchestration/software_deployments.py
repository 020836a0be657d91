"""Heat's software deployments API, the reads (`openstack software deployment list` and
`openstack software deployment metadata show`): the project's deployments, built from the
deployment resources of its stacks (software_deployment.py keeps them on their rows).

Creating, updating and deleting deployments through this API, and the `/software_configs`
routes, are not served: a deployment here is always a stack's resource.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from canopy.api.deps import ReadSessionDep
from canopy.api.orchestration.common import ScopeDep
from canopy.domain.errors import InvalidRequest
from canopy.orchestration.resources.software_deployment import (
    deployment_view,
    project_deployments,
    server_deployments,
)

router = APIRouter()
MAX_ID = 255


@router.get("/software_deployments", summary="List the project's software deployments")
async def list_deployments(request: Request, ctx: ScopeDep, s: ReadSessionDep) -> dict[str, Any]:
    """Heat's index: every deployment of the project, or those to `server_id`."""
    server_id = request.query_params.get("server_id")
    if server_id is not None and len(server_id) > MAX_ID:
        raise InvalidRequest(f"server_id is at most {MAX_ID} characters.")
    rows = await project_deployments(s, ctx.project_id, server_id)
    return {"software_deployments": [deployment_view(r) for r in rows]}


@router.get(
    "/software_deployments/metadata/{server_id}",
    summary="The deployments' configs of one server (what its agent reads)",
)
async def server_metadata(server_id: str, ctx: ScopeDep, s: ReadSessionDep) -> dict[str, Any]:
    """Heat's `metadata_software_deployments`: the derived configs deployed to the server,
    ordered by config name ([] for a server with none)."""
    return {"metadata": await server_deployments(s, ctx.project_id, server_id)}
