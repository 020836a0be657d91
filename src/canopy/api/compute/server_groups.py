"""Nova: os-server-groups. Named affinity policies that the scheduler applies across clouds
(each cloud is a "host": anti-affinity puts members on different clouds).

Microversions: 2.13 shows `project_id` and `user_id`; 2.15 adds the soft policies; 2.64
replaces `policies: [p]` and `metadata` with `policy` and `rules`; 2.75 refuses unknown
query parameters on the list.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response

from canopy.api.auth import AuthDep, WriterDep
from canopy.api.compute.microversion import APIVersion, VersionDep
from canopy.api.compute.params import non_negative, query, reject_unknown
from canopy.api.deps import ClockDep, ReadSessionDep, SessionDep, SettingsDep
from canopy.domain.errors import Conflict, InvalidRequest
from canopy.services import server_groups as service
from canopy.store.models import ServerGroup

router = APIRouter()

MAX_LIMIT = 1000  # Nova's [api] max_limit
JsonBody = Annotated[dict[str, Any], Body()]


def group_view(group: ServerGroup, members: list[str], v: APIVersion) -> dict[str, Any]:
    body: dict[str, Any] = {"id": group.id, "name": group.name}
    if v.at_least(64):
        body["policy"] = group.policy
        body["rules"] = {}
    else:
        body["policies"] = [group.policy]
        body["metadata"] = {}
    body["members"] = members
    if v.at_least(13):
        body["project_id"] = group.project_id
        body["user_id"] = group.user_id
    return body


def _unexpected(where: str, extra: list[str]) -> InvalidRequest:
    verb = "was" if len(extra) == 1 else "were"
    return InvalidRequest(
        f"Invalid input for field/attribute {where}. Additional properties are not allowed "
        f"({', '.join(map(repr, extra))} {verb} unexpected)"
    )


def parse_create(body: dict[str, Any], v: APIVersion) -> tuple[str, str]:
    """(name, policy) from a create body, by the rules of microversion `v`."""
    if set(body) - {"server_group"}:
        raise _unexpected("body", sorted(set(body) - {"server_group"}))
    sg = body.get("server_group")
    if not isinstance(sg, dict):
        raise InvalidRequest(
            "Invalid input for field/attribute server_group. 'server_group' is a required "
            "property and must be an object."
        )
    allowed = {"name", "policy", "rules"} if v.at_least(64) else {"name", "policies"}
    extra = sorted(set(sg) - allowed)
    if extra:
        raise _unexpected("server_group", extra)
    if "name" not in sg:
        raise InvalidRequest("Invalid input for field/attribute server_group. 'name' is a "
                             "required property")  # fmt: skip
    name = service.check_name(sg["name"])
    if v.at_least(64):
        policy = sg.get("policy")
        if policy is None:
            raise InvalidRequest("Invalid input for field/attribute server_group. 'policy' is "
                                 "a required property")  # fmt: skip
        if policy not in service.POLICIES:
            raise InvalidRequest(
                f"Invalid input for field/attribute policy. Value: {policy}. {policy!r} is "
                f"not one of {list(service.POLICIES)}"
            )
        _check_rules(sg.get("rules", {}), policy)
        return name, policy
    policies = sg.get("policies")
    if policies is None:
        raise InvalidRequest("Invalid input for field/attribute server_group. 'policies' is a "
                             "required property")  # fmt: skip
    allowed_policies = service.POLICIES if v.at_least(15) else service.HARD_POLICIES
    if not isinstance(policies, list) or len(policies) != 1 or policies[0] not in allowed_policies:
        raise InvalidRequest(
            f"Invalid input for field/attribute policies. Value: {policies}. It must be a list "
            f"of exactly one of {list(allowed_policies)}"
        )
    return name, str(policies[0])


def _check_rules(rules: Any, policy: str) -> None:
    if not isinstance(rules, dict):
        raise InvalidRequest(
            f"Invalid input for field/attribute rules. Value: {rules}. {rules!r} is not of "
            "type 'object'"
        )
    extra = sorted(set(rules) - {"max_server_per_host"})
    if extra:
        raise _unexpected("rules", extra)
    if not rules:
        return
    raw = rules["max_server_per_host"]
    text = str(raw)
    if isinstance(raw, bool) or not isinstance(raw, int | str) or not text.isdigit():
        text = "0"
    if int(text) < 1:
        raise InvalidRequest(
            f"Invalid input for field/attribute max_server_per_host. Value: {raw}. "
            "It must be a positive integer"
        )
    if policy != "anti-affinity":
        raise InvalidRequest("Only anti-affinity policy supports rules.")
    if int(text) > 1:
        # Canopy's hosts are clouds; "at most N members per cloud" is not scheduled yet.
        raise Conflict(
            "Creating an anti-affinity group with rule max_server_per_host > 1 is not yet "
            "supported."
        )


@router.get("/os-server-groups", summary="List server groups")
async def list_server_groups(
    request: Request, ctx: AuthDep, v: VersionDep, s: ReadSessionDep
) -> dict[str, Any]:
    params = query(request)
    reject_unknown(params, {"all_projects", "limit", "offset"}, v)
    limit = non_negative(params, "limit") or MAX_LIMIT  # Nova: 0 or none means the maximum
    offset = non_negative(params, "offset") or 0
    groups = await service.listing(
        s, ctx, all_projects="all_projects" in params, limit=min(limit, MAX_LIMIT), offset=offset
    )
    members = await service.members(s, [g.id for g in groups])
    return {"server_groups": [group_view(g, members.get(g.id, []), v) for g in groups]}


@router.post("/os-server-groups", summary="Create a server group")
async def create_server_group(
    body: JsonBody,
    ctx: WriterDep,
    v: VersionDep,
    s: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> dict[str, Any]:
    name, policy = parse_create(body, v)
    group = await service.create(s, settings, ctx, name, policy, clock.now())
    return {"server_group": group_view(group, [], v)}


@router.get("/os-server-groups/{group_id}", summary="Show a server group and its members")
async def show_server_group(
    group_id: str, request: Request, ctx: AuthDep, v: VersionDep, s: ReadSessionDep
) -> dict[str, Any]:
    reject_unknown(query(request), set(), v, since=102)
    group = await service.get(s, ctx, group_id)
    members = await service.members(s, [group.id])
    return {"server_group": group_view(group, members.get(group.id, []), v)}


@router.delete(
    "/os-server-groups/{group_id}",
    summary="Delete a server group (its servers stay)",
    status_code=204,
    response_class=Response,
)
async def delete_server_group(
    group_id: str, ctx: WriterDep, v: VersionDep, s: SessionDep
) -> Response:
    await service.delete(s, ctx, group_id)
    return Response(status_code=204)
