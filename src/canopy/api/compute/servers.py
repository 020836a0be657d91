"""Nova: servers. Create, list (filters, keyset pages), show, update, delete, power actions
and tags, each through ServerService in the request's own transaction. Never a cloud call:
a write records intent and wakes the controllers once it has committed."""

from __future__ import annotations

import secrets
import string
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.api.auth import AuthDep, WriterDep
from canopy.api.compute.common import (
    bool_from_string,
    last,
    limit_and_marker,
    links,
    page_links,
    parse_isotime,
    reject_nul_body,
    reject_nul_query,
    reject_unknown,
    request_of_reservation,
    reservation_id,
)
from canopy.api.compute.microversion import APIVersion, VersionDep
from canopy.api.compute.schemas import CreateBody, TagsBody, UpdateBody, check_create
from canopy.api.compute.views import (
    ViewContext,
    server_basic,
    server_detail,
    view_context,
)
from canopy.api.deps import (
    ClockDep,
    DatabaseDep,
    ReadSessionDep,
    SessionDep,
    SettingsDep,
    wake_after_commit,
)
from canopy.domain.context import RequestContext
from canopy.domain.errors import Forbidden, InvalidRequest, NotFound
from canopy.services.server_input import check_scheduler_hints
from canopy.services.servers import (
    CreateServer,
    ServerQuery,
    ServerService,
)
from canopy.store.models import Cloud, Keypair, Server

router = APIRouter()


def get_service(db: DatabaseDep, settings: SettingsDep, clock: ClockDep) -> ServerService:
    return ServerService(db, settings, clock)


ServiceDep = Annotated[ServerService, Depends(get_service)]


# Create ---------------------------------------------------------------------------------


@router.post("/servers", status_code=202, summary="Create one or more servers")
async def create_server(
    request: Request,
    v: VersionDep,
    ctx: WriterDep,
    s: SessionDep,
    settings: SettingsDep,
    service: ServiceDep,
    body: CreateBody,
) -> JSONResponse:
    reject_nul_body(body.model_dump(by_alias=True))
    check_create(body, v)
    srv = body.server
    image, from_volume = _image_ref(srv.imageRef, srv.block_device_mapping_v2, srv)
    zone = await _zone(s, ctx, srv.availability_zone, srv.host, srv.hypervisor_hostname)
    if srv.personality:
        raise InvalidRequest(
            "Personality files (file injection) are not supported; pass user_data instead."
        )
    if srv.trusted_image_certificates:
        raise InvalidRequest("trusted_image_certificates are not supported by canopy.")
    hints = check_scheduler_hints(body.hints if body.hints is not None else body.hints_legacy or {})
    group_id = hints.get("group")
    if srv.key_name is not None:
        # A keypair belongs to its user (Nova); the user must own the one named.
        owned = await s.execute(
            select(Keypair.id).where(Keypair.user_id == ctx.user_id, Keypair.name == srv.key_name)
        )
        if owned.scalar_one_or_none() is None:
            raise InvalidRequest("Invalid key_name provided.")
    description = srv.description if v.at_least(19) else srv.name
    req = CreateServer(
        name=srv.name,
        flavor=_id_from_href(str(srv.flavorRef)),
        image=image,
        availability_zone=zone,
        group_id=group_id or None,
        key_name=srv.key_name,
        metadata=dict(srv.metadata),
        min_count=srv.min_count,
        max_count=srv.max_count if srv.max_count is not None else srv.min_count,
        hints=hints,
        description=description,
        tags=tuple(srv.tags or ()),
        user_data=srv.user_data,
        config_drive=bool(srv.config_drive),
        boot_from_volume=from_volume,
    )
    servers = await service.create(ctx, req, session=s)
    wake_after_commit(s)
    if srv.return_reservation_id:
        return JSONResponse({"reservation_id": reservation_id(ctx.request_id)}, status_code=202)
    first = servers[0]
    server_links = links(request, settings, "servers", first.id)
    groups = [g.model_dump() for g in srv.security_groups or []] or [{"name": "default"}]
    out = {
        "id": first.id,
        "links": server_links,
        "OS-DCF:diskConfig": "MANUAL",
        "security_groups": groups,
        "adminPass": srv.adminPass if srv.adminPass is not None else _password(),
    }
    return JSONResponse(
        {"server": out}, status_code=202, headers={"Location": server_links[0]["href"]}
    )


def _id_from_href(ref: str) -> str:
    """Nova's `get_id_from_href`: a flavor or image may be given as a URL."""
    if "/" not in ref:
        return ref
    return urlsplit(ref).path.rstrip("/").split("/")[-1] or ref


def _image_ref(image_ref: str | None, bdms: Any, srv: Any) -> tuple[str, bool]:
    """The image to boot and whether it came through a block device mapping (boot from
    volume: Nova shows the server's image as "")."""
    if srv.block_device_mapping:
        if bdms:
            raise InvalidRequest(
                "Using different block_device_mapping syntaxes is not allowed in the same request."
            )
        raise InvalidRequest(
            "block_device_mapping (volumes) is not supported: canopy has no volume service."
        )
    image_bdm = None
    for bdm in bdms or []:
        source = bdm.source_type
        if source in ("volume", "snapshot") or bdm.volume_id or bdm.snapshot_id:
            raise InvalidRequest(
                f"Block device mapping source {source or 'volume'!r} is not supported: "
                "canopy has no volume service; boot from an image."
            )
        if source == "image" and image_bdm is None:
            image_bdm = bdm
    if image_ref:
        return _id_from_href(image_ref), False
    if image_bdm is not None and (image_bdm.uuid or image_bdm.image_id):
        return str(image_bdm.uuid or image_bdm.image_id), True
    raise InvalidRequest("Missing imageRef attribute")


async def _zone(
    s: AsyncSession,
    ctx: RequestContext,
    requested: str | None,
    host: str | None,
    node: str | None,
) -> str | None:
    """The availability zone (a cloud) to pin to, from `zone[:host[:node]]` and 2.74's
    host/hypervisor_hostname (both admin-only, as in Nova: a cloud is also the host)."""
    zone = requested
    forced: str | None = None
    if requested and ":" in requested:
        parts = requested.split(":")
        zone = parts[0] or None
        forced = next((p for p in parts[1:] if p), None)
        if forced and not ctx.is_cloud_admin:
            raise Forbidden(
                "Policy doesn't allow os_compute_api:servers:create:forced_host to be performed."
            )
    if host or node:
        if not ctx.is_cloud_admin:
            raise Forbidden(
                "Policy doesn't allow compute:servers:create:requested_destination to be performed."
            )
        forced = host or node
    if forced:
        if zone and zone != forced:
            raise InvalidRequest(
                f"Host {forced!r} is not in availability zone {zone!r}: a cloud is its own zone."
            )
        zone = forced
    if zone == "nova" and await s.get(Cloud, "nova") is None:
        return None  # Nova's default zone name: no preference
    return zone or None


def _password(length: int = 12) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


# List -----------------------------------------------------------------------------------

# Query parameters Nova's schema knows (index_query and later versions).
_BASE_PARAMS = frozenset(
    {
        "user_id", "project_id", "tenant_id", "launch_index", "image_ref", "image",
        "kernel_id", "ramdisk_id", "hostname", "key_name", "power_state", "vm_state",
        "task_state", "host", "node", "flavor", "reservation_id", "launched_at",
        "terminated_at", "availability_zone", "name", "display_name", "description",
        "display_description", "locked_by", "uuid", "root_device_name", "config_drive",
        "access_ip_v4", "access_ip_v6", "auto_disk_config", "progress", "sort_key",
        "sort_dir", "all_tenants", "soft_deleted", "deleted", "status", "changes-since",
        "ip", "ip6", "created_at", "limit", "marker",
        # joined tables: known, and refused below
        "block_device_mapping", "services", "metadata", "system_metadata", "info_cache",
        "security_groups", "pci_devices",
    }
)  # fmt: skip
_JOINED = frozenset(
    {
        "block_device_mapping",
        "services",
        "metadata",
        "system_metadata",
        "info_cache",
        "security_groups",
        "pci_devices",
    }
)
_TAG_FILTERS = ("tags", "tags-any", "not-tags", "not-tags-any")
_PAGING = frozenset({"sort_key", "sort_dir", "limit", "marker"})

# Nova statuses a filter may name (common._STATE_MAP); what canopy stores for each.
_STATUS_FILTER: dict[str, frozenset[str]] = {
    "ACTIVE": frozenset({"ACTIVE", "REBOOT", "HARD_REBOOT"}),  # vm_state active
    "REBOOT": frozenset({"REBOOT"}),
    "HARD_REBOOT": frozenset({"HARD_REBOOT"}),
    "BUILD": frozenset({"BUILD"}),
    "SHUTOFF": frozenset({"SHUTOFF"}),
    "ERROR": frozenset({"ERROR"}),
    "DELETED": frozenset({"DELETED"}),
}
_OTHER_STATUSES = frozenset(
    {
        "PASSWORD", "REBUILD", "MIGRATING", "RESIZE", "VERIFY_RESIZE", "REVERT_RESIZE",
        "PAUSED", "SUSPENDED", "RESCUE", "SOFT_DELETED", "SHELVED", "SHELVED_OFFLOADED",
    }
)  # fmt: skip
_VM_STATES: dict[str, frozenset[str]] = {
    "active": frozenset({"ACTIVE", "REBOOT", "HARD_REBOOT"}),
    "building": frozenset({"BUILD"}),
    "stopped": frozenset({"SHUTOFF"}),
    "error": frozenset({"ERROR"}),
    "deleted": frozenset({"DELETED"}),
}

# Nova's sort keys -> canopy's (None: accepted, orders nothing canopy keeps).
_SORT_KEYS: dict[str, str | None] = {
    "created_at": "created_at",
    "updated_at": "updated_at",
    "display_name": "name",
    "hostname": "name",
    "uuid": "id",
    "project_id": "project_id",
    "user_id": "user_id",
    "key_name": "key_name",
    "task_state": "task_state",
    "vm_state": "status",
    "power_state": "observed_state",
    "host": "cloud",
    "node": "cloud",
    "availability_zone": "zone",
    "image_ref": "image_id",
    "instance_type_id": "flavor_id",
    "launched_at": "launched_at",
    "terminated_at": "terminated_at",
    "access_ip_v4": None,
    "access_ip_v6": None,
    "auto_disk_config": None,
    "config_drive": None,
    "display_description": None,
    "kernel_id": None,
    "launch_index": None,
    "locked_by": None,
    "progress": None,
    "ramdisk_id": None,
    "root_device_name": None,
}
# Valid before 2.75 but ignored (Nova's SERVER_LIST_IGNORE_SORT_KEY).
_IGNORED_SORT_KEYS = frozenset(
    {
        "architecture", "cell_name", "cleaned", "default_ephemeral_device",
        "default_swap_device", "deleted", "deleted_at", "disable_terminate", "ephemeral_gb",
        "ephemeral_key_uuid", "id", "key_data", "launched_on", "locked", "memory_mb",
        "os_type", "reservation_id", "root_gb", "shutdown_terminate", "user_data", "vcpus",
        "vm_mode",
    }
)  # fmt: skip


def _known_params(v: APIVersion) -> frozenset[str]:
    known = set(_BASE_PARAMS)
    if v.at_least(26):
        known.update(_TAG_FILTERS)
    if v.at_least(66):
        known.add("changes-before")
    if v.at_least(73):
        known.add("locked")
    return frozenset(known)


def _non_admin_params(v: APIVersion) -> frozenset[str]:
    """Filters a non-admin may use (Nova's _get_server_search_options); others are dropped."""
    opts = {"reservation_id", "name", "status", "image", "flavor", "ip", "changes-since"}
    opts.add("all_tenants")
    if v.at_least(5):
        opts.add("ip6")
    if v.at_least(26):
        opts.update(_TAG_FILTERS)
    if v.at_least(66):
        opts.add("changes-before")
    if v.at_least(73):
        opts.add("locked")
    return frozenset(opts)


def _server_query(request: Request, v: APIVersion, ctx: RequestContext) -> ServerQuery | None:
    """Nova's _get_servers, parameter by parameter. None means "an empty list"."""
    params = request.query_params
    reject_nul_query(request)
    if v.at_least(75):
        reject_unknown(request, _known_params(v))
    opts: dict[str, str] = {}
    for key in params:
        if key in _PAGING:
            continue
        value = last(request, key)
        assert value is not None
        opts[key] = value
    if ctx.is_cloud_admin:
        for key in opts:
            if key in _JOINED or key.startswith("_"):
                raise InvalidRequest(f"Invalid filter field: {key}.")
    else:
        allowed = _non_admin_params(v)
        opts = {k: val for k, val in opts.items() if k in allowed}

    statuses: set[str] | None = None
    deleted_only = False
    if "status" in params:
        statuses = set()
        for raw in params.getlist("status"):
            st = raw.upper()
            if st in _STATUS_FILTER:
                statuses |= _STATUS_FILTER[st]
            elif st not in _OTHER_STATUSES:
                if v.at_least(38):
                    raise InvalidRequest("Invalid status value")
                return None
        if statuses == {"DELETED"}:
            if not ctx.is_cloud_admin:
                raise Forbidden("Only administrators may list deleted instances")
            deleted_only = True
    if ctx.is_cloud_admin and "vm_state" in opts:
        states = _VM_STATES.get(opts["vm_state"].lower(), frozenset())
        statuses = set(states) if statuses is None else statuses & states
        if states == _VM_STATES["deleted"]:
            deleted_only = True

    since = (
        parse_isotime("changes-since", opts["changes-since"]) if "changes-since" in opts else None
    )
    before = (
        parse_isotime("changes-before", opts["changes-before"])
        if "changes-before" in opts
        else None
    )
    if since and before and before < since:
        raise InvalidRequest(
            "The value of changes-since must be less than or equal to changes-before."
        )
    deleted: bool | None
    if "deleted" in opts:
        deleted = bool_from_string(opts["deleted"], default=False)
    elif since is None and before is None:
        deleted = False
    else:
        deleted = None  # changes-since/-before also return recently deleted servers
    if deleted_only:
        deleted = True
    all_projects = False
    if "all_tenants" in opts:
        raw_all = opts["all_tenants"]
        all_projects = bool_from_string(raw_all, strict=True) if raw_all else True
        if all_projects and not ctx.is_cloud_admin:
            kind = "detail" if request.url.path.endswith("/detail") else "index"
            raise Forbidden(
                f"Policy doesn't allow os_compute_api:servers:{kind}:get_all_tenants to be "
                "performed."
            )
    project_id = None
    if all_projects:
        project_id = opts.get("project_id") or opts.get("tenant_id")

    locked: bool | None = None
    if "locked" in opts:
        locked = bool_from_string(opts["locked"], strict=True)

    def tags(name: str) -> tuple[str, ...]:
        if not v.at_least(26) or name not in opts:
            return ()
        return tuple(t for t in opts[name].split(",") if t)

    resv = opts.get("reservation_id")
    image = opts.get("image") or opts.get("image_ref")
    cloud = opts.get("host") or opts.get("node") or opts.get("availability_zone")
    sort = _sort(request, v, ctx)
    limit, marker = limit_and_marker(request)
    return ServerQuery(
        all_projects=all_projects,
        project_id=project_id,
        user_id=opts.get("user_id") if ctx.is_cloud_admin else None,
        name=opts.get("name") or opts.get("display_name"),
        statuses=frozenset(statuses) if statuses is not None else None,
        deleted=deleted,
        changes_since=since,
        changes_before=before,
        image_id=_id_from_href(image) if image else None,
        flavor_id=opts.get("flavor"),
        cloud=cloud if ctx.is_cloud_admin else None,
        key_name=opts.get("key_name") if ctx.is_cloud_admin else None,
        task_state=opts.get("task_state") if ctx.is_cloud_admin else None,
        request_id=request_of_reservation(resv) if resv else None,
        tags=tags("tags"),
        tags_any=tags("tags-any"),
        not_tags=tags("not-tags"),
        not_tags_any=tags("not-tags-any"),
        locked=locked,
        ip=opts.get("ip"),
        ip6=opts.get("ip6"),
        sort=sort,
        limit=limit,
        marker=marker,
    )


def _sort(request: Request, v: APIVersion, ctx: RequestContext) -> tuple[tuple[str, bool], ...]:
    """Nova's get_sort_params + process_sort_params: keys, directions and the defaults
    (created_at, id) appended in the first direction."""
    params = request.query_params
    keys = [k.strip() for k in params.getlist("sort_key")] or ["created_at"]
    dirs = [d.strip() for d in params.getlist("sort_dir")] or ["desc"]
    for d in dirs:
        if d not in ("asc", "desc"):
            raise InvalidRequest(
                "Invalid input received: Unknown sort direction, must be 'desc' or 'asc'"
            )
    if len(dirs) > len(keys):
        raise InvalidRequest("Invalid input received: Sort direction size exceeds sort key size")
    ignored = set(_IGNORED_SORT_KEYS)
    if v.at_least(73):
        ignored.discard("locked")
    pairs: list[tuple[str, str]] = []
    for i, key in enumerate(keys):
        d = dirs[i] if i < len(dirs) else dirs[0]
        valid = key in _SORT_KEYS or (key == "locked" and v.at_least(73))
        if not valid and not (key in ignored and not v.at_least(75)):
            raise InvalidRequest(
                f"Invalid input for query parameters sort_key. Value: {key}. "
                f"'{key}' is not one of the valid sort keys"
            )
        if key in ("host", "node") and not ctx.is_cloud_admin:
            raise Forbidden(f"Only administrators can sort servers by {key}")
        if key in ignored:
            continue
        pairs.append((key, d))
    first = dirs[0]
    out: list[tuple[str, bool]] = []
    for key, d in pairs:
        mapped = _SORT_KEYS.get(key)
        if mapped is not None:
            out.append((mapped, d == "desc"))
    names = {k for k, _ in out}
    if "created_at" not in names:
        out.append(("created_at", first == "desc"))
    if "id" not in names:
        out.append(("id", first == "desc"))
    return tuple(out)


async def _list(
    request: Request,
    v: APIVersion,
    ctx: RequestContext,
    s: AsyncSession,
    settings: SettingsDep,
    service: ServerService,
    *,
    detail: bool,
) -> dict[str, Any]:
    query = _server_query(request, v, ctx)
    servers = list(await service.search(ctx, query, session=s)) if query is not None else []
    vc = await view_context(s, request, settings, v, ctx, servers if detail else [])
    if detail:
        items = [server_detail(vc, sv) for sv in servers]
    else:
        items = [server_basic(vc, sv) for sv in servers]
    out: dict[str, Any] = {"servers": items}
    if query is not None and query.limit is not None:
        path = "servers/detail" if detail else "servers"
        nxt = page_links(request, settings, path, servers, query.limit, lambda sv: sv.id)
        if nxt:
            out["servers_links"] = nxt
    return out


@router.get("/servers", summary="List servers (id, name, links)")
async def list_servers(
    request: Request,
    v: VersionDep,
    ctx: AuthDep,
    s: ReadSessionDep,
    settings: SettingsDep,
    service: ServiceDep,
) -> dict[str, Any]:
    return await _list(request, v, ctx, s, settings, service, detail=False)


@router.get("/servers/detail", summary="List servers with details")
async def list_servers_detail(
    request: Request,
    v: VersionDep,
    ctx: AuthDep,
    s: ReadSessionDep,
    settings: SettingsDep,
    service: ServiceDep,
) -> dict[str, Any]:
    return await _list(request, v, ctx, s, settings, service, detail=True)


# One server -----------------------------------------------------------------------------


async def _show(
    request: Request,
    v: APIVersion,
    ctx: RequestContext,
    s: AsyncSession,
    settings: SettingsDep,
    server: Server,
) -> dict[str, Any]:
    vc: ViewContext = await view_context(s, request, settings, v, ctx, [server], show=True)
    return {"server": server_detail(vc, server, show=True)}


@router.get("/servers/{server_id}", summary="Show a server")
async def show_server(
    server_id: str,
    request: Request,
    v: VersionDep,
    ctx: AuthDep,
    s: ReadSessionDep,
    settings: SettingsDep,
    service: ServiceDep,
) -> dict[str, Any]:
    server = await service.get(ctx, server_id, include_deleted=False, session=s)
    return await _show(request, v, ctx, s, settings, server)


@router.put("/servers/{server_id}", summary="Rename a server or set its description")
async def update_server(
    server_id: str,
    request: Request,
    v: VersionDep,
    ctx: WriterDep,
    s: SessionDep,
    settings: SettingsDep,
    service: ServiceDep,
    body: UpdateBody,
) -> dict[str, Any]:
    reject_nul_body(body.model_dump(by_alias=True))
    given = body.server.model_fields_set
    if "description" in given and not v.at_least(19):
        raise InvalidRequest(
            "Invalid input for field/attribute server. Additional properties are not allowed "
            "('description' was unexpected)"
        )
    if body.server.name is not None and body.server.name != body.server.name.strip():
        raise InvalidRequest(
            "Invalid input for field/attribute name. Leading and trailing whitespace is not "
            "allowed."
        )
    server = await service.update(
        ctx,
        server_id,
        name=body.server.name,
        description=body.server.description,
        set_description="description" in given,
        session=s,
    )
    return await _show(request, v, ctx, s, settings, server)


@router.delete("/servers/{server_id}", status_code=204, summary="Delete a server")
async def delete_server(
    server_id: str, _v: VersionDep, ctx: WriterDep, s: SessionDep, service: ServiceDep
) -> Response:
    await service.delete(ctx, server_id, session=s)
    wake_after_commit(s)
    return Response(status_code=204)


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
