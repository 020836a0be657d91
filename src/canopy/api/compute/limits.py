"""Nova: limits. The caller's project's absolute limits and usage (`rate` is always empty).

Microversions: 2.36 drops the nova-network limits, 2.39 `maxImageMeta`, 2.57
`maxPersonality` and `maxPersonalitySize`; 2.75 refuses unknown query parameters.
`reserved` (which python-openstackclient sends) is accepted at every version.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from canopy.api.auth import AuthDep
from canopy.api.compute.microversion import APIVersion, VersionDep
from canopy.api.compute.params import first, query, reject_unknown
from canopy.api.deps import ReadSessionDep, SettingsDep
from canopy.domain.errors import Forbidden
from canopy.services import quotas

router = APIRouter()

# Quota name -> the limits it shows as, in Nova's view.
_MAX: dict[str, tuple[str, ...]] = {
    "ram": ("maxTotalRAMSize",),
    "instances": ("maxTotalInstances",),
    "cores": ("maxTotalCores",),
    "key_pairs": ("maxTotalKeypairs",),
    "floating_ips": ("maxTotalFloatingIps",),
    "metadata_items": ("maxServerMeta", "maxImageMeta"),
    "injected_files": ("maxPersonality",),
    "injected_file_content_bytes": ("maxPersonalitySize",),
    "security_groups": ("maxSecurityGroups",),
    "security_group_rules": ("maxSecurityGroupRules",),
    "server_groups": ("maxServerGroups",),
    "server_group_members": ("maxServerGroupMembers",),
}
_USED: dict[str, str] = {
    "totalRAMUsed": "ram",
    "totalCoresUsed": "cores",
    "totalInstancesUsed": "instances",
    "totalFloatingIpsUsed": "floating_ips",
    "totalSecurityGroupsUsed": "security_groups",
    "totalServerGroupsUsed": "server_groups",
}


def _hidden(v: APIVersion) -> frozenset[str]:
    if v.at_least(57):
        return frozenset({"floating_ips", "security_groups", "security_group_rules",
                          "injected_files", "injected_file_content_bytes"})  # fmt: skip
    if v.at_least(36):
        return frozenset({"floating_ips", "security_groups", "security_group_rules"})
    return frozenset()


def absolute(limits: dict[str, int], used: dict[str, int], v: APIVersion) -> dict[str, int]:
    """Nova's `absolute` block at microversion `v`."""
    hidden = _hidden(v)
    out: dict[str, int] = {}
    for resource, names in _MAX.items():
        if resource in hidden:
            continue
        for name in names:
            if name == "maxImageMeta" and v.at_least(39):
                continue
            out[name] = limits[resource]
    for name, resource in _USED.items():
        if resource not in hidden:
            out[name] = used[resource]
    return out


@router.get("/limits", summary="The caller's project's limits and usage")
async def show_limits(
    request: Request, ctx: AuthDep, v: VersionDep, s: ReadSessionDep, settings: SettingsDep
) -> dict[str, Any]:
    params = query(request)
    reject_unknown(params, {"tenant_id", "reserved"}, v)
    project_id = ctx.project_id
    tenant = first(params, "tenant_id")
    if tenant and tenant != ctx.project_id:
        if not ctx.is_cloud_admin:
            raise Forbidden(
                "Policy doesn't allow os_compute_api:limits:other_project to be performed."
            )
        project_id = tenant
    limits = await quotas.limits(s, settings, project_id)
    used = await quotas.usage(s, project_id, "")
    return {"limits": {"rate": [], "absolute": absolute(limits, used, v)}}
