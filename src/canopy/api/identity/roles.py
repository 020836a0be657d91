"""Roles (admin, member, reader: fixed, with stable ids), grants of a role to a user on a
project, and Keystone's role assignment listing."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.api.auth import identity_rule
from canopy.api.deps import ReadSessionDep, SessionDep
from canopy.api.identity.common import V3, collection_links, domain_ref, flag, self_link
from canopy.domain.errors import NotFound
from canopy.services import identity
from canopy.services.identity import ROLE_IDS, ROLES
from canopy.store.models import Project, RoleAssignment, User

router = APIRouter(tags=["identity"])

ROLES_PATH = V3 + "/roles"
GRANT = V3 + "/projects/{project_id}/users/{user_id}/roles"

_DESCRIPTIONS = {
    "admin": "On the admin project: everything, everywhere. Elsewhere: what member can.",
    "member": "Create, change and delete the project's servers, keypairs and groups.",
    "reader": "Look at the project's servers and resources, change nothing.",
}


def role_view(request: Request, name: str) -> dict[str, Any]:
    rid = ROLE_IDS[name]
    return {
        "id": rid,
        "name": name,
        "domain_id": None,
        "description": _DESCRIPTIONS[name],
        "options": {"immutable": True},
        "links": self_link(request, f"/roles/{rid}"),
    }


@router.get(ROLES_PATH, dependencies=[Depends(identity_rule("list_roles"))])
async def list_roles(
    request: Request, name: str | None = None, domain_id: str | None = None
) -> dict[str, Any]:
    """The three roles (admin only), filtered by name."""
    names = [r for r in ROLES if name is None or r == name] if domain_id is None else []
    return {"roles": [role_view(request, r) for r in names], "links": collection_links(request)}


@router.get(ROLES_PATH + "/{role_id}", dependencies=[Depends(identity_rule("get_role"))])
async def show_role(request: Request, role_id: str) -> dict[str, Any]:
    return {"role": role_view(request, identity.role_by_id(role_id))}


async def _grant_target(
    s: AsyncSession, project_id: str, user_id: str, role_id: str
) -> tuple[Project, User, str]:
    project = await identity.find_project(s, id=project_id)
    user = await identity.find_user(s, id=user_id)
    return project, user, identity.role_by_id(role_id)


@router.get(GRANT, dependencies=[Depends(identity_rule("list_grants"))])
async def list_grants(
    request: Request, project_id: str, user_id: str, s: ReadSessionDep
) -> dict[str, Any]:
    """The roles a user holds on a project."""
    await identity.find_project(s, id=project_id)
    await identity.find_user(s, id=user_id)
    names = await identity.roles_on(s, user_id, project_id)
    return {"roles": [role_view(request, r) for r in names], "links": collection_links(request)}


@router.put(
    GRANT + "/{role_id}", status_code=204, dependencies=[Depends(identity_rule("create_grant"))]
)
async def grant(project_id: str, user_id: str, role_id: str, s: SessionDep) -> Response:
    """Give a user a role on a project (idempotent)."""
    p, u, role = await _grant_target(s, project_id, user_id, role_id)
    await identity.grant(s, u.id, p.id, role)
    return Response(status_code=204)


@router.head(
    GRANT + "/{role_id}", status_code=204, dependencies=[Depends(identity_rule("check_grant"))]
)
async def check_grant(project_id: str, user_id: str, role_id: str, s: ReadSessionDep) -> Response:
    """204 if the user holds the role on the project, else 404."""
    p, u, role = await _grant_target(s, project_id, user_id, role_id)
    if role not in await identity.roles_on(s, u.id, p.id):
        raise NotFound(f"Could not find role assignment with role: {role_id}.")
    return Response(status_code=204)


@router.delete(
    GRANT + "/{role_id}", status_code=204, dependencies=[Depends(identity_rule("revoke_grant"))]
)
async def revoke_grant(project_id: str, user_id: str, role_id: str, s: SessionDep) -> Response:
    """Take a role away; tokens lose it at once (roles are read live)."""
    p, u, role = await _grant_target(s, project_id, user_id, role_id)
    await identity.ungrant(s, u.id, p.id, role)
    return Response(status_code=204)


# Filters of GET /v3/role_assignments that can only match what canopy does not have.
_NOTHING_MATCHES = ("group.id", "scope.domain.id", "scope.system", "scope.OS-INHERIT:inherited_to")


@router.get(
    V3 + "/role_assignments", dependencies=[Depends(identity_rule("list_role_assignments"))]
)
async def role_assignments(request: Request, s: ReadSessionDep) -> dict[str, Any]:
    """Who holds which role where, filtered by `user.id`, `scope.project.id`, `role.id`;
    `include_names` adds names. `effective` changes nothing: canopy has no groups and no
    inherited roles."""
    q = request.query_params
    links = collection_links(request)
    if any(k in q for k in _NOTHING_MATCHES):
        return {"role_assignments": [], "links": links}
    role: str | None = None
    if "role.id" in q:
        try:
            role = identity.role_by_id(q["role.id"])
        except NotFound:
            return {"role_assignments": [], "links": links}
    rows = await identity.list_assignments(
        s, user_id=q.get("user.id"), project_id=q.get("scope.project.id"), role=role
    )
    names = bool(flag(q.get("include_names"), "include_names"))
    users: dict[str, User] = {}
    projects: dict[str, Project] = {}
    if names and rows:
        users = {u.id: u for u in await identity.list_users(s)}
        projects = {p.id: p for p in await identity.list_projects(s)}
    return {
        "role_assignments": [_assignment(request, a, users, projects, names) for a in rows],
        "links": links,
    }


def _assignment(
    request: Request,
    a: RoleAssignment,
    users: dict[str, User],
    projects: dict[str, Project],
    names: bool,
) -> dict[str, Any]:
    rid = ROLE_IDS[a.role]
    role: dict[str, Any] = {"id": rid}
    user: dict[str, Any] = {"id": a.user_id}
    project: dict[str, Any] = {"id": a.project_id}
    if names:
        role["name"] = a.role
        if a.user_id in users:
            user.update(name=users[a.user_id].name, domain=domain_ref())
        if a.project_id in projects:
            project.update(name=projects[a.project_id].name, domain=domain_ref())
    return {
        "role": role,
        "user": user,
        "scope": {"project": project},
        "links": {
            "assignment": self_link(
                request, f"/projects/{a.project_id}/users/{a.user_id}/roles/{rid}"
            )["self"]
        },
    }
