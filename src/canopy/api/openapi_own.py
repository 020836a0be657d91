"""The statuses each operation answers beyond those of its kind (`openapi.statuses`): 403
role checks, 404s named in a body, 409 conflicts. Every route is described here; an
operation missing from `OWN` is refused by the tests, so a new route must be added."""

from __future__ import annotations

from collections.abc import Iterable

OWN: dict[tuple[str, str], frozenset[int]] = {}


def _own(*keys: str, statuses: Iterable[int] = ()) -> None:
    for key in keys:
        method, path = key.split(" ", 1)
        OWN[(method, path)] = frozenset(statuses)


# Unauthenticated documents: version discovery, health, metrics.
_own(
    "GET /healthz",
    "GET /metrics",
    "GET /identity",
    "GET /identity/v3",
    "GET /compute/",
    "GET /compute/v2.1/",
    "GET /image/",
    "GET /image/versions",
)
# Canopy's admin API (every route: 401 without a token, 403 without the admin role).
_own(
    "GET /canopy/v1/clouds",
    "GET /canopy/v1/clouds/{name}",
    "GET /canopy/v1/spend",
    "GET /canopy/v1/placements",
    "GET /canopy/v1/servers/{server_id}/placements",
    "GET /canopy/v1/flavors",
    "GET /canopy/v1/images",
    "GET /canopy/v1/images/{image_id}",
    "GET /canopy/v1/servers",
    "GET /canopy/v1/servers/{server_id}",
)
_own("POST /canopy/v1/images", statuses=(409,))  # a name or id already taken
# Clouds at run time: a name taken; a cloud of the config file (edited in the file).
_own("POST /canopy/v1/clouds", statuses=(409,))
_own("PATCH /canopy/v1/clouds/{name}", "DELETE /canopy/v1/clouds/{name}", statuses=(409,))
_own("PUT /canopy/v1/images/{image_id}/map/{cloud}")
# Any project's token (no role check): a search that reads and holds nothing.
_own("POST /canopy/v1/leases/find-slot")
# Notifications: a project's own subscriptions (403: a reader writing; every project's
# events for a non-admin; the per-project limit).
_own(
    "GET /canopy/v1/subscriptions",
    "GET /canopy/v1/subscriptions/{subscription_id}",
    "GET /canopy/v1/subscriptions/{subscription_id}/deliveries",
)
_own(
    "POST /canopy/v1/subscriptions",
    "PATCH /canopy/v1/subscriptions/{subscription_id}",
    "DELETE /canopy/v1/subscriptions/{subscription_id}",
    "POST /canopy/v1/subscriptions/{subscription_id}/replay",
    "POST /canopy/v1/subscriptions/{subscription_id}/skip",
    statuses=(403,),
)
# Keystone.
_own("POST /identity/v3/auth/tokens", statuses=(403, 404))  # disabled project; no such scope
_own(
    "GET /identity/v3/auth/tokens",
    "HEAD /identity/v3/auth/tokens",
    "DELETE /identity/v3/auth/tokens",
    statuses=(400, 403, 404),  # X-Subject-Token missing, not the caller's, unknown
)
_own(
    "GET /identity/v3/auth/projects",
    "GET /identity/v3/auth/domains",
    "GET /identity/v3/auth/system",
    "GET /identity/v3/auth/catalog",
)
_own(  # Keystone's policy may refuse any of these to a non-admin
    "GET /identity/v3/services",
    "GET /identity/v3/services/{service_id}",
    "GET /identity/v3/endpoints",
    "GET /identity/v3/endpoints/{endpoint_id}",
    "GET /identity/v3/regions",
    "GET /identity/v3/regions/{region_id}",
    "GET /identity/v3/roles",
    "GET /identity/v3/roles/{role_id}",
    "GET /identity/v3/domains",
    "GET /identity/v3/domains/{domain_id}",
    statuses=(403,),
)
_own(
    "GET /identity/v3/projects",
    "GET /identity/v3/projects/{project_id}",
    "GET /identity/v3/users",
    "GET /identity/v3/users/{user_id}",
    "GET /identity/v3/users/{user_id}/projects",
    "GET /identity/v3/users/{user_id}/groups",
    "GET /identity/v3/projects/{project_id}/users/{user_id}/roles",
    "HEAD /identity/v3/projects/{project_id}/users/{user_id}/roles/{role_id}",
    "GET /identity/v3/role_assignments",
    statuses=(403,),
)
_own(
    "POST /identity/v3/projects",
    "PATCH /identity/v3/projects/{project_id}",
    "DELETE /identity/v3/projects/{project_id}",
    "POST /identity/v3/users",
    "PATCH /identity/v3/users/{user_id}",
    "DELETE /identity/v3/users/{user_id}",
    "PUT /identity/v3/projects/{project_id}/users/{user_id}/roles/{role_id}",
    "DELETE /identity/v3/projects/{project_id}/users/{user_id}/roles/{role_id}",
    statuses=(403, 409),
)
_own("POST /identity/v3/users/{user_id}/password", statuses=(403,))
# A user's own application credentials (403: another user's; a restricted credential's
# token creating or deleting one; 409: a name the user already gave one).
_own(
    "GET /identity/v3/users/{user_id}/application_credentials",
    "GET /identity/v3/users/{user_id}/application_credentials/{application_credential_id}",
    statuses=(403,),
)
_own("POST /identity/v3/users/{user_id}/application_credentials", statuses=(403, 409))
_own(
    "DELETE /identity/v3/users/{user_id}/application_credentials/{application_credential_id}",
    statuses=(403,),
)
# Nova.
_own(
    "GET /compute/v2.1/servers",
    "GET /compute/v2.1/servers/detail",
    "GET /compute/v2.1/flavors",
    "GET /compute/v2.1/flavors/detail",
    "GET /compute/v2.1/os-availability-zone",
    "GET /compute/v2.1/os-availability-zone/detail",
    "GET /compute/v2.1/os-keypairs",
    "GET /compute/v2.1/os-server-groups",
    "GET /compute/v2.1/limits",
    statuses=(403,),  # admin-only filters (all_tenants, a user_id, a tenant_id)
)
_own("POST /compute/v2.1/servers", statuses=(403, 409))  # quota; name conflicts
_own(
    "GET /compute/v2.1/servers/{server_id}",
    "GET /compute/v2.1/servers/{server_id}/tags",
    "GET /compute/v2.1/servers/{server_id}/tags/{tag}",
    "GET /compute/v2.1/servers/{server_id}/metadata",
    "GET /compute/v2.1/servers/{server_id}/metadata/{key}",
    "GET /compute/v2.1/flavors/{flavor_id}",
    "GET /compute/v2.1/flavors/{flavor_id}/os-extra_specs",
    "GET /compute/v2.1/flavors/{flavor_id}/os-extra_specs/{key}",
    "GET /compute/v2.1/servers/{server_id}/os-instance-actions",
    "GET /compute/v2.1/servers/{server_id}/os-instance-actions/{request_id}",
    "GET /compute/v2.1/os-keypairs/{name}",
    "GET /compute/v2.1/os-server-groups/{group_id}",
)
_own(
    "PUT /compute/v2.1/servers/{server_id}",
    "DELETE /compute/v2.1/servers/{server_id}",
    "POST /compute/v2.1/servers/{server_id}/action",
    "PUT /compute/v2.1/servers/{server_id}/tags",
    "DELETE /compute/v2.1/servers/{server_id}/tags",
    "PUT /compute/v2.1/servers/{server_id}/tags/{tag}",
    "DELETE /compute/v2.1/servers/{server_id}/tags/{tag}",
    statuses=(403, 409),  # a reader; locked, or in a state that refuses it
)
_own(
    "POST /compute/v2.1/servers/{server_id}/metadata",
    "PUT /compute/v2.1/servers/{server_id}/metadata",
    "PUT /compute/v2.1/servers/{server_id}/metadata/{key}",
    "DELETE /compute/v2.1/servers/{server_id}/metadata/{key}",
    statuses=(403, 409),  # a reader, or the metadata_items quota; locked, or its state
)
_own("POST /compute/v2.1/os-keypairs", statuses=(403, 409))  # quota; name taken
_own("DELETE /compute/v2.1/os-keypairs/{name}", statuses=(403,))
_own("POST /compute/v2.1/os-server-groups", statuses=(403, 409))
_own("DELETE /compute/v2.1/os-server-groups/{group_id}", statuses=(403,))
# Flavor management: a cloud admin's (403 for anyone else).
_own("POST /compute/v2.1/flavors", statuses=(403, 409))  # a name or id taken
_own(
    "PUT /compute/v2.1/flavors/{flavor_id}",
    "POST /compute/v2.1/flavors/{flavor_id}/os-extra_specs",
    "PUT /compute/v2.1/flavors/{flavor_id}/os-extra_specs/{key}",
    "DELETE /compute/v2.1/flavors/{flavor_id}/os-extra_specs/{key}",
    "GET /compute/v2.1/flavors/{flavor_id}/os-flavor-access",
    statuses=(403,),
)
# A reservation's flavor (deleted with its lease); access that exists, or a public flavor.
_own(
    "DELETE /compute/v2.1/flavors/{flavor_id}",
    "POST /compute/v2.1/flavors/{flavor_id}/action",
    statuses=(403, 409),
)
_own(
    "GET /compute/v2.1/os-quota-sets/{project_id}",
    "GET /compute/v2.1/os-quota-sets/{project_id}/detail",
    "GET /compute/v2.1/os-quota-sets/{project_id}/defaults",
    "PUT /compute/v2.1/os-quota-sets/{project_id}",
    "DELETE /compute/v2.1/os-quota-sets/{project_id}",
    statuses=(403,),
)
# Glance.
_own(
    "GET /image/v2/schemas/image",
    "GET /image/v2/schemas/images",
    "GET /image/v2/images",
    "GET /image/v2/images/{image_id}",
)

# Blazar.
_own("GET /reservation/", "GET /reservation/versions")
_own("GET /reservation/v1/plugins", "GET /reservation/v1/leases")
_own("POST /reservation/v1/leases", statuses=(403, 409))  # a reader; name taken, no room
_own("GET /reservation/v1/leases/{lease_id}")
_own(
    "PUT /reservation/v1/leases/{lease_id}",
    statuses=(403, 409),  # a reader; name taken, no room over the new window, lease ended
)
_own("DELETE /reservation/v1/leases/{lease_id}", statuses=(403,))
# os-hosts: a cloud admin only (403); a host registered twice, not reported yet, or with
# servers on it (409, Blazar's HostHavingServers).
_own(
    "GET /reservation/v1/os-hosts",
    "GET /reservation/v1/os-hosts/allocations",
    "GET /reservation/v1/os-hosts/properties",
    "GET /reservation/v1/os-hosts/{host_id}",
    "GET /reservation/v1/os-hosts/{host_id}/allocation",
    "PUT /reservation/v1/os-hosts/{host_id}",
    "DELETE /reservation/v1/os-hosts/{host_id}",
    statuses=(403,),
)
_own("POST /reservation/v1/os-hosts", statuses=(403, 409))

# Heat: every route names a project in its path; another project than the token's is 403.
_HEAT = "/orchestration/v1/{project_id}"
_STACK = _HEAT + "/stacks/{stack_name}/{stack_id}"
_own(
    f"GET {_HEAT}/stacks",
    f"POST {_HEAT}/stacks/preview",
    f"POST {_HEAT}/validate",
    f"GET {_HEAT}/resource_types",
    f"GET {_HEAT}/resource_types/{{type_name}}",
    f"GET {_HEAT}/resource_types/{{type_name}}/template",
    f"GET {_HEAT}/template_versions",
    f"GET {_HEAT}/template_versions/{{template_version}}/functions",
    *(f"{m} {_HEAT}/stacks/{{stack_name}}" for m in ("GET", "PUT", "PATCH", "DELETE")),
    *(
        f"GET {_HEAT}/stacks/{{stack_name}}/{sub}"
        for sub in ("resources", "events", "template", "outputs")
    ),
    f"POST {_HEAT}/stacks/{{stack_name}}/actions",
    f"GET {_STACK}",
    f"DELETE {_STACK}",
    f"GET {_STACK}/resources",
    f"GET {_STACK}/resources/{{resource_name}}",
    f"GET {_STACK}/resources/{{resource_name}}/metadata",
    f"GET {_STACK}/resources/{{resource_name}}/events",
    f"GET {_STACK}/resources/{{resource_name}}/events/{{event_id}}",
    f"GET {_STACK}/events",
    f"GET {_STACK}/outputs",
    f"GET {_STACK}/outputs/{{output_key}}",
    f"GET {_STACK}/template",
    f"GET {_HEAT}/software_deployments",
    f"GET {_HEAT}/software_deployments/metadata/{{server_id}}",
    statuses=(403,),
)
_own(  # a reader or another project's path
    f"POST {_HEAT}/software_configs",
    f"GET {_HEAT}/software_configs/{{config_id}}",
    f"POST {_HEAT}/software_deployments",
    f"GET {_HEAT}/software_deployments/{{deployment_id}}",
    statuses=(403,),
)
_own(f"GET {_HEAT}/software_configs", statuses=(400, 403))  # a limit not a whole number
_own(  # and a config a deployment references, a deployment that is a stack's resource
    f"DELETE {_HEAT}/software_configs/{{config_id}}",
    f"PUT {_HEAT}/software_deployments/{{deployment_id}}",
    f"DELETE {_HEAT}/software_deployments/{{deployment_id}}",
    statuses=(403, 409),
)
_own(  # a wrong signal token or a reader; no such resource; too many waiting
    f"POST {_STACK}/resources/{{resource_name}}/signal",
    f"PUT {_STACK}/resources/{{resource_name}}/signal",  # a CFN handle's URL (cfn-signal)
    statuses=(403, 404, 429),
)
_own(  # a reader or another project; a name taken, a stack busy
    f"POST {_HEAT}/stacks",
    f"PUT {_STACK}",
    f"PATCH {_STACK}",
    f"POST {_STACK}/actions",  # and a stack busy, or not suspended, for its action
    f"DELETE {_STACK}/abandon",  # and a stack in progress
    f"PATCH {_STACK}/resources/{{resource_name}}",  # mark (un)healthy: and a stack busy
    statuses=(403, 409),
)
