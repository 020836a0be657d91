"""Nova: the query parameters of a server list (filters, sort keys, pages), parsed into a
ServerQuery the way Nova's _get_servers reads them."""

from __future__ import annotations

from fastapi import Request

from canopy.api.compute.common import (
    bool_from_string,
    last,
    limit_and_marker,
    parse_isotime,
    reject_nul_query,
    reject_unknown,
    request_of_reservation,
)
from canopy.api.compute.microversion import APIVersion
from canopy.api.compute.server_create import _id_from_href
from canopy.domain.context import RequestContext
from canopy.domain.errors import Forbidden, InvalidRequest
from canopy.services.servers import ServerQuery

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
