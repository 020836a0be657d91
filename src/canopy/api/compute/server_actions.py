"""Nova: server actions (stop, start, reboot; the rest refused) and tags (2.26)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response

from canopy.api.auth import AuthDep, WriterDep
from canopy.api.compute.common import links
from canopy.api.compute.microversion import APIVersion, VersionDep
from canopy.api.compute.schemas import TagsBody
from canopy.api.compute.server_deps import ServiceDep
from canopy.api.deps import ReadSessionDep, SessionDep, SettingsDep, wake_after_commit
from canopy.domain.errors import InvalidRequest, NotFound

router = APIRouter()

# Actions --------------------------------------------------------------------------------

_UNSUPPORTED_ACTIONS = frozenset(
    {
        "addFixedIp", "removeFixedIp", "addFloatingIp", "removeFloatingIp", "addSecurityGroup",
        "removeSecurityGroup", "changePassword", "confirmResize", "createBackup",
        "createImage", "evacuate", "forceDelete", "injectNetworkInfo", "lock", "migrate",
        "os-getConsoleOutput", "os-getRDPConsole", "os-getSerialConsole",
        "os-getSPICEConsole", "os-getVNCConsole", "os-migrateLive", "os-resetState",
        "os-resetNetwork", "pause", "rebuild", "rescue", "resize", "restore",
        "revertResize", "resume", "shelve", "shelveOffload", "suspend", "trigger_crash_dump",
        "unlock", "unpause", "unrescue", "unshelve",
    }
)  # fmt: skip


@router.post("/servers/{server_id}/action", status_code=202, summary="Stop, start, reboot")
async def server_action(
    server_id: str,
    _v: VersionDep,
    ctx: WriterDep,
    s: SessionDep,
    service: ServiceDep,
    body: Annotated[dict[str, Any], Body()],
) -> Response:
    if len(body) != 1:
        raise InvalidRequest("Malformed request body: exactly one action is expected.")
    [(action, args)] = body.items()
    if action == "os-stop":
        await service.stop(ctx, server_id, session=s)
    elif action == "os-start":
        await service.start(ctx, server_id, session=s)
    elif action == "reboot":
        kind = args.get("type") if isinstance(args, dict) else None
        extra = set(args) - {"type"} if isinstance(args, dict) else set()
        if not isinstance(kind, str) or kind.upper() not in ("SOFT", "HARD") or extra:
            raise InvalidRequest(
                f"Invalid input for field/attribute reboot. Value: {args!r}. 'type' must be "
                "one of 'SOFT' or 'HARD'"
            )
        await service.reboot(ctx, server_id, hard=kind.upper() == "HARD", session=s)
    elif action in _UNSUPPORTED_ACTIONS:
        await service.get(ctx, server_id, include_deleted=False, session=s)  # 404 first
        raise InvalidRequest(f"The action {action!r} is not supported by canopy.")
    else:
        raise InvalidRequest(f"There is no such action: {action}")
    wake_after_commit(s)
    return Response(status_code=202)


# Tags (2.26) ----------------------------------------------------------------------------


def _tags_version(v: APIVersion) -> None:
    if not v.at_least(26):
        raise NotFound("The resource could not be found.")


@router.get("/servers/{server_id}/tags", summary="List a server's tags (2.26)")
async def list_tags(
    server_id: str, v: VersionDep, ctx: AuthDep, s: ReadSessionDep, service: ServiceDep
) -> dict[str, Any]:
    _tags_version(v)
    return {"tags": await service.tags(ctx, server_id, session=s)}


@router.put("/servers/{server_id}/tags", summary="Replace a server's tags (2.26)")
async def replace_tags(
    server_id: str,
    v: VersionDep,
    ctx: WriterDep,
    s: SessionDep,
    service: ServiceDep,
    body: TagsBody,
) -> dict[str, Any]:
    _tags_version(v)
    return {"tags": await service.set_tags(ctx, server_id, body.tags, session=s)}


@router.delete("/servers/{server_id}/tags", status_code=204, summary="Remove all tags (2.26)")
async def delete_tags(
    server_id: str, v: VersionDep, ctx: WriterDep, s: SessionDep, service: ServiceDep
) -> Response:
    _tags_version(v)
    await service.set_tags(ctx, server_id, [], session=s)
    return Response(status_code=204)


@router.get("/servers/{server_id}/tags/{tag}", status_code=204, summary="Check a tag (2.26)")
async def check_tag(
    server_id: str,
    tag: str,
    v: VersionDep,
    ctx: AuthDep,
    s: ReadSessionDep,
    service: ServiceDep,
) -> Response:
    _tags_version(v)
    if tag not in await service.tags(ctx, server_id, session=s):
        raise NotFound(f"Tag {tag} could not be found for server {server_id}.")
    return Response(status_code=204)


@router.put("/servers/{server_id}/tags/{tag}", summary="Add a tag (2.26)")
async def add_tag(
    server_id: str,
    tag: str,
    request: Request,
    v: VersionDep,
    ctx: WriterDep,
    s: SessionDep,
    settings: SettingsDep,
    service: ServiceDep,
) -> Response:
    _tags_version(v)
    current = await service.tags(ctx, server_id, session=s)
    if tag in current:
        return Response(status_code=204)
    await service.set_tags(ctx, server_id, [*current, tag], session=s)
    href = links(request, settings, "servers", server_id)[0]["href"] + f"/tags/{tag}"
    return Response(status_code=201, headers={"Location": href})


@router.delete("/servers/{server_id}/tags/{tag}", status_code=204, summary="Remove a tag (2.26)")
async def delete_tag(
    server_id: str, tag: str, v: VersionDep, ctx: WriterDep, s: SessionDep, service: ServiceDep
) -> Response:
    _tags_version(v)
    current = await service.tags(ctx, server_id, session=s)
    if tag not in current:
        raise NotFound(f"Tag {tag} could not be found for server {server_id}.")
    await service.set_tags(ctx, server_id, [t for t in current if t != tag], session=s)
    return Response(status_code=204)
