"""Projects (all in domain Default, none acting as a domain): managed by cloud admins; a
caller may also read the project their token is scoped to."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from canopy.api.auth import identity_rule, own_project_rule
from canopy.api.deps import ClockDep, ReadSessionDep, SessionDep
from canopy.api.identity.common import V3, collection_links, flag, page, self_link
from canopy.domain.errors import InvalidRequest
from canopy.services import identity
from canopy.services.identity import DEFAULT_DOMAIN
from canopy.store.models import Project

router = APIRouter(tags=["identity"])

PROJECTS = V3 + "/projects"


def project_view(request: Request, p: Project) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "domain_id": p.domain_id,
        "description": p.description,
        "enabled": p.enabled,
        "parent_id": p.domain_id,  # a top-level project's parent is its domain
        "is_domain": False,
        "tags": [],
        "options": {},
        "links": self_link(request, f"/projects/{p.id}"),
    }


def check_domain_id(domain_id: str | None) -> None:
    if domain_id is not None and domain_id != DEFAULT_DOMAIN[0]:
        raise InvalidRequest(
            f"Could not find domain: {domain_id[:64]}. Canopy has one domain, "
            f"{DEFAULT_DOMAIN[1]} (id {DEFAULT_DOMAIN[0]})."
        )


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ProjectCreate(_In):
    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    enabled: bool = True
    domain_id: str | None = None
    parent_id: str | None = None
    is_domain: bool = False


class ProjectCreateBody(_In):
    project: ProjectCreate


class ProjectUpdate(_In):
    name: str | None = Field(default=None, min_length=1, max_length=64)
    description: str | None = None
    enabled: bool | None = None
    domain_id: str | None = None


class ProjectUpdateBody(_In):
    project: ProjectUpdate


@router.get(PROJECTS, dependencies=[Depends(identity_rule("list_projects"))])
async def list_projects(
    request: Request,
    s: ReadSessionDep,
    name: str | None = None,
    domain_id: str | None = None,
    parent_id: str | None = None,
    enabled: str | None = None,
    is_domain: str | None = None,
    limit: int | None = Query(default=None, ge=1),
    marker: str | None = None,
) -> dict[str, Any]:
    """Every project (cloud admin), filtered by name, domain, enabled."""
    projects: list[Project] = []
    if (
        domain_id in (None, DEFAULT_DOMAIN[0])
        and parent_id in (None, DEFAULT_DOMAIN[0])
        and not flag(is_domain, "is_domain")
    ):
        projects = await identity.list_projects(s, name=name, enabled=flag(enabled, "enabled"))
    shown, next_url = page(request, projects, lambda p: p.id, limit, marker)
    return {
        "projects": [project_view(request, p) for p in shown],
        "links": collection_links(request, next_url),
    }


@router.post(PROJECTS, status_code=201, dependencies=[Depends(identity_rule("create_project"))])
async def create_project(
    request: Request, body: ProjectCreateBody, s: SessionDep, clock: ClockDep
) -> dict[str, Any]:
    want = body.project
    check_domain_id(want.domain_id)
    if want.parent_id not in (None, DEFAULT_DOMAIN[0]):
        raise InvalidRequest("Canopy's projects are not nested: parent_id must be the domain.")
    if want.is_domain:
        raise InvalidRequest("Canopy has no projects acting as domains: is_domain must be false.")
    p = await identity.create_project(
        s, want.name, clock.now(), description=want.description or "", enabled=want.enabled
    )
    return {"project": project_view(request, p)}


@router.get(PROJECTS + "/{project_id}", dependencies=[Depends(own_project_rule("get_project"))])
async def show_project(request: Request, project_id: str, s: ReadSessionDep) -> dict[str, Any]:
    """One project: a cloud admin sees any, others the one their token is scoped to."""
    p = await identity.find_project(s, id=project_id)
    return {"project": project_view(request, p)}


@router.patch(PROJECTS + "/{project_id}", dependencies=[Depends(identity_rule("update_project"))])
async def update_project(
    request: Request, project_id: str, body: ProjectUpdateBody, s: SessionDep
) -> dict[str, Any]:
    p = await identity.find_project(s, id=project_id)
    want = body.project
    if want.domain_id is not None and want.domain_id != p.domain_id:
        raise InvalidRequest("A project cannot move to another domain.")
    await identity.update_project(
        s, p, name=want.name, description=want.description, enabled=want.enabled
    )
    return {"project": project_view(request, p)}


@router.delete(
    PROJECTS + "/{project_id}",
    status_code=204,
    dependencies=[Depends(identity_rule("delete_project"))],
)
async def delete_project(project_id: str, s: SessionDep) -> Response:
    """Delete a project and its role assignments (refused while it has servers)."""
    p = await identity.find_project(s, id=project_id)
    await identity.delete_project(s, p)
    return Response(status_code=204)
