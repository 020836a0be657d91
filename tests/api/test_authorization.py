"""Authorisation, route by route: every route in /openapi.json, five callers, one table.

Five callers, with tokens from `POST /identity/v3/auth/tokens`: a cloud admin (admin on the
admin project), a project admin (admin on the project `demo`), a member and a reader of
`demo`, and no token at all. For each route, TABLE says who is allowed (`ANYONE` includes no
token; the others get 401 without a token, 403 with one, in the service's fault format),
which objects fill its path (the caller's own, or demo's), a body if it needs one, and what
a caller who is allowed on their own objects gets for another project's (`foreign`: 404
where Nova and Keystone hide that the object exists, 403 where they refuse). A cloud admin
may act on every project's objects. "Allowed" means the answer is not 401 or 403 (it may
still be a 404 or a 409 for reasons of its own); a cloud admin's answer for another
project's object must not be 404 either, so the object is really there.

Path values name fixtures of tests/api/authz_world.py ("server" is a server of demo, or of
the other project when the objects are foreign; "fresh_*" is a new one made for the one
request, for requests that delete or change it). `{uid}` in a body is a new unique name.

A route without a row here fails the test: decide who may call it, then add the row (and
the line in docs/openstack-api.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI

from tests.api.authz_world import World, build_world, fault_shape, fill, login_body
from tests.api.conftest import Api

CLOUD_ADMIN = "cloud admin"
PROJECT_ADMIN = "project admin"
MEMBER = "member"
READER = "reader"
NO_TOKEN = "no token"
CALLERS = (CLOUD_ADMIN, PROJECT_ADMIN, MEMBER, READER, NO_TOKEN)

ANYONE = frozenset(CALLERS)
READERS = frozenset({CLOUD_ADMIN, PROJECT_ADMIN, MEMBER, READER})  # any valid token
WRITERS = frozenset({CLOUD_ADMIN, PROJECT_ADMIN, MEMBER})
CLOUD = frozenset({CLOUD_ADMIN})

V3 = "/identity/v3"
V21 = "/compute/v2.1"


@dataclass(frozen=True)
class Rule:
    allowed: frozenset[str]
    path: dict[str, str] = field(default_factory=dict)  # path parameter -> fixture
    body: Any = None
    foreign: int | None = None  # what allowed non-cloud-admins get for another project's
    subject: str | None = None  # X-Subject-Token: "token" (the caller's) or "fresh_token"


SERVER = {"server_id": "server"}
FRESH_SERVER = {"server_id": "fresh_server"}
TAG = {"server_id": "server", "tag": "tag"}
FRESH_TAG = {"server_id": "fresh_server", "tag": "tag"}
META = {"server_id": "server", "key": "meta_key"}
FRESH_META = {"server_id": "fresh_server", "key": "meta_key"}
GROUP = {"group_id": "group"}
FRESH_FLAVOR = {"flavor_id": "fresh_flavor"}
FRESH_SPEC = {"flavor_id": "fresh_flavor", "key": "extra_spec"}
OWN_PROJECT = {"project_id": "project"}
SELF = {"user_id": "user"}
APP_CRED = {"user_id": "user", "application_credential_id": "app_cred"}
GRANT = {"project_id": "project", "user_id": "user"}
GRANT_ROLE = {"project_id": "project", "user_id": "user", "role_id": "role"}
SERVER_BODY = {"server": {"name": "vm", "imageRef": "cirros", "flavorRef": "1", "networks": "none"}}

LEASE = {"lease_id": "lease"}
FRESH_LEASE = {"lease_id": "fresh_lease"}
HOST = {"host_id": "unknown_host"}
LEASE_BODY = {
    "name": "lease-{uid}",
    "start_date": "2030-02-01 00:00",
    "end_date": "2030-02-01 01:00",
    "reservations": [
        {
            "resource_type": "virtual:instance",
            "amount": 1,
            "vcpus": 1,
            "memory_mb": 512,
            "disk_gb": 0,
            "affinity": "False",
            "resource_properties": "",
        }
    ],
    "events": [],
    "before_end_date": None,
}

HEAT = "/orchestration/v1/{project_id}"
IDENTIFIED = HEAT + "/stacks/{stack_name}/{stack_id}"
PROJECT = {"project_id": "project"}
A_STACK = {"project_id": "project", "stack_name": "stack_name", "stack_id": "stack_id"}
FRESH_STACK = {
    "project_id": "project",
    "stack_name": "fresh_stack_name",
    "stack_id": "fresh_stack_id",
}
NAMED_STACK = {"project_id": "project", "stack_name": "stack_name"}
HEAT_TEMPLATE = {
    "heat_template_version": "2018-08-31",
    "resources": {"v": {"type": "OS::Heat::Value", "properties": {"value": "x"}}},
}
SUB = {"subscription_id": "subscription"}
FRESH_SUB = {"subscription_id": "fresh_subscription"}
SUBS = "/canopy/v1/subscriptions"
SUB_BODY = {"kind": "webhook", "url": "https://hooks.example.com/{uid}"}

TABLE: dict[str, Rule] = {
    # Health, metrics, version documents and logging in: open to anyone.
    "GET /healthz": Rule(ANYONE),
    "GET /metrics": Rule(ANYONE),
    "GET /identity": Rule(ANYONE),
    "GET /identity/v3": Rule(ANYONE),
    "GET /compute/": Rule(ANYONE),
    "GET /compute/v2.1/": Rule(ANYONE),
    "GET /image/": Rule(ANYONE),
    "GET /image/versions": Rule(ANYONE),
    f"POST {V3}/auth/tokens": Rule(ANYONE, body="login"),
    # Keystone: a token holder looks at their own token (a cloud admin at anyone's).
    f"GET {V3}/auth/tokens": Rule(READERS, subject="token", foreign=403),
    f"HEAD {V3}/auth/tokens": Rule(READERS, subject="token", foreign=403),
    f"DELETE {V3}/auth/tokens": Rule(READERS, subject="fresh_token", foreign=403),
    f"GET {V3}/auth/projects": Rule(READERS),
    f"GET {V3}/auth/domains": Rule(READERS),
    f"GET {V3}/auth/system": Rule(READERS),
    f"GET {V3}/auth/catalog": Rule(READERS),
    f"GET {V3}/regions": Rule(READERS),
    f"GET {V3}/regions/{{region_id}}": Rule(READERS, {"region_id": "region"}),
    f"GET {V3}/domains": Rule(READERS),
    f"GET {V3}/domains/{{domain_id}}": Rule(READERS, {"domain_id": "domain"}),
    # Keystone: a caller reads their own project and user; managing them is the cloud's.
    f"GET {V3}/projects/{{project_id}}": Rule(READERS, OWN_PROJECT, foreign=403),
    f"GET {V3}/users/{{user_id}}": Rule(READERS, SELF, foreign=403),
    f"GET {V3}/users/{{user_id}}/projects": Rule(READERS, SELF, foreign=403),
    f"GET {V3}/users/{{user_id}}/groups": Rule(READERS, SELF, foreign=403),
    f"POST {V3}/users/{{user_id}}/password": Rule(
        READERS, SELF, {"user": {"original_password": "pw", "password": "pw"}}, foreign=403
    ),
    # A user's own application credentials (a cloud admin may read and delete anyone's,
    # but creates none for another user, Keystone's rule: a 403 for everyone, pinned in
    # tests/api/identity/test_app_credentials.py).
    f"GET {V3}/users/{{user_id}}/application_credentials": Rule(READERS, SELF, foreign=403),
    f"POST {V3}/users/{{user_id}}/application_credentials": Rule(
        READERS, {"user_id": "own_user"}, {"application_credential": {"name": "ac-{uid}"}}
    ),
    f"GET {V3}/users/{{user_id}}/application_credentials/{{application_credential_id}}": Rule(
        READERS, APP_CRED, foreign=403
    ),
    f"DELETE {V3}/users/{{user_id}}/application_credentials/{{application_credential_id}}": Rule(
        READERS, APP_CRED, foreign=403
    ),
    f"GET {V3}/projects": Rule(CLOUD),
    f"POST {V3}/projects": Rule(CLOUD, body={"project": {"name": "p-{uid}"}}),
    f"PATCH {V3}/projects/{{project_id}}": Rule(
        CLOUD, {"project_id": "fresh_project"}, {"project": {"description": "x"}}
    ),
    f"DELETE {V3}/projects/{{project_id}}": Rule(CLOUD, {"project_id": "fresh_project"}),
    f"GET {V3}/users": Rule(CLOUD),
    f"POST {V3}/users": Rule(CLOUD, body={"user": {"name": "u-{uid}", "password": "pw"}}),
    f"PATCH {V3}/users/{{user_id}}": Rule(
        CLOUD, {"user_id": "fresh_user"}, {"user": {"description": "x"}}
    ),
    f"DELETE {V3}/users/{{user_id}}": Rule(CLOUD, {"user_id": "fresh_user"}),
    f"GET {V3}/roles": Rule(CLOUD),
    f"GET {V3}/roles/{{role_id}}": Rule(CLOUD, {"role_id": "role"}),
    f"GET {V3}/projects/{{project_id}}/users/{{user_id}}/roles": Rule(CLOUD, GRANT),
    f"HEAD {V3}/projects/{{project_id}}/users/{{user_id}}/roles/{{role_id}}": Rule(
        CLOUD, GRANT_ROLE
    ),
    f"PUT {V3}/projects/{{project_id}}/users/{{user_id}}/roles/{{role_id}}": Rule(
        CLOUD, {"project_id": "fresh_project", "user_id": "fresh_user", "role_id": "role"}
    ),
    f"DELETE {V3}/projects/{{project_id}}/users/{{user_id}}/roles/{{role_id}}": Rule(
        CLOUD, {"project_id": "project", "user_id": "fresh_member", "role_id": "role"}
    ),
    f"GET {V3}/role_assignments": Rule(CLOUD),
    f"GET {V3}/services": Rule(CLOUD),
    f"GET {V3}/services/{{service_id}}": Rule(CLOUD, {"service_id": "service"}),
    f"GET {V3}/endpoints": Rule(CLOUD),
    f"GET {V3}/endpoints/{{endpoint_id}}": Rule(CLOUD, {"endpoint_id": "endpoint"}),
    # Nova: a project's servers, read by anyone in it and changed by its members and
    # admins; another project's do not exist for them.
    f"GET {V21}/servers": Rule(READERS),
    f"GET {V21}/servers/detail": Rule(READERS),
    f"POST {V21}/servers": Rule(WRITERS, body=SERVER_BODY),
    f"GET {V21}/servers/{{server_id}}": Rule(READERS, SERVER, foreign=404),
    f"PUT {V21}/servers/{{server_id}}": Rule(
        WRITERS, SERVER, {"server": {"name": "renamed"}}, foreign=404
    ),
    f"DELETE {V21}/servers/{{server_id}}": Rule(WRITERS, FRESH_SERVER, foreign=404),
    f"POST {V21}/servers/{{server_id}}/action": Rule(
        WRITERS, FRESH_SERVER, {"reboot": {"type": "SOFT"}}, foreign=404
    ),
    f"GET {V21}/servers/{{server_id}}/tags": Rule(READERS, SERVER, foreign=404),
    f"PUT {V21}/servers/{{server_id}}/tags": Rule(
        WRITERS, FRESH_SERVER, {"tags": ["a"]}, foreign=404
    ),
    f"DELETE {V21}/servers/{{server_id}}/tags": Rule(WRITERS, FRESH_SERVER, foreign=404),
    f"GET {V21}/servers/{{server_id}}/tags/{{tag}}": Rule(READERS, TAG, foreign=404),
    f"PUT {V21}/servers/{{server_id}}/tags/{{tag}}": Rule(WRITERS, FRESH_TAG, foreign=404),
    f"DELETE {V21}/servers/{{server_id}}/tags/{{tag}}": Rule(WRITERS, FRESH_TAG, foreign=404),
    f"GET {V21}/servers/{{server_id}}/metadata": Rule(READERS, SERVER, foreign=404),
    # Writes that keep meta_key (a new server each would pass demo's instance quota).
    f"POST {V21}/servers/{{server_id}}/metadata": Rule(
        WRITERS, SERVER, {"metadata": {"k": "v"}}, foreign=404
    ),
    f"PUT {V21}/servers/{{server_id}}/metadata": Rule(
        WRITERS, SERVER, {"metadata": {"meta_key": "v"}}, foreign=404
    ),
    f"GET {V21}/servers/{{server_id}}/metadata/{{key}}": Rule(READERS, META, foreign=404),
    f"PUT {V21}/servers/{{server_id}}/metadata/{{key}}": Rule(
        WRITERS, META, {"meta": {"meta_key": "x"}}, foreign=404
    ),
    f"DELETE {V21}/servers/{{server_id}}/metadata/{{key}}": Rule(WRITERS, FRESH_META, foreign=404),
    f"GET {V21}/servers/{{server_id}}/os-instance-actions": Rule(READERS, SERVER, foreign=404),
    f"GET {V21}/servers/{{server_id}}/os-instance-actions/{{request_id}}": Rule(
        READERS, {"server_id": "server", "request_id": "request_id"}, foreign=404
    ),
    f"GET {V21}/flavors": Rule(READERS),
    f"GET {V21}/flavors/detail": Rule(READERS),
    f"GET {V21}/flavors/{{flavor_id}}": Rule(READERS, {"flavor_id": "flavor"}),
    f"GET {V21}/flavors/{{flavor_id}}/os-extra_specs": Rule(READERS, {"flavor_id": "flavor"}),
    f"GET {V21}/flavors/{{flavor_id}}/os-extra_specs/{{key}}": Rule(
        READERS, {"flavor_id": "flavor", "key": "extra_spec"}
    ),
    # Flavor management: a cloud admin's alone (Nova's os-flavor-manage, -extra-specs and
    # -access policies), on a private flavor made for the one request.
    f"POST {V21}/flavors": Rule(
        CLOUD, body={"flavor": {"name": "f-{uid}", "ram": 64, "vcpus": 1, "disk": 0}}
    ),
    f"PUT {V21}/flavors/{{flavor_id}}": Rule(
        CLOUD, FRESH_FLAVOR, {"flavor": {"description": "a size"}}
    ),
    f"DELETE {V21}/flavors/{{flavor_id}}": Rule(CLOUD, FRESH_FLAVOR),
    f"POST {V21}/flavors/{{flavor_id}}/os-extra_specs": Rule(
        CLOUD, FRESH_FLAVOR, {"extra_specs": {"hw:mem_page_size": "large"}}
    ),
    f"PUT {V21}/flavors/{{flavor_id}}/os-extra_specs/{{key}}": Rule(
        CLOUD, FRESH_SPEC, {"hw:cpu_policy": "dedicated"}
    ),
    f"DELETE {V21}/flavors/{{flavor_id}}/os-extra_specs/{{key}}": Rule(CLOUD, FRESH_SPEC),
    f"GET {V21}/flavors/{{flavor_id}}/os-flavor-access": Rule(CLOUD, FRESH_FLAVOR),
    f"POST {V21}/flavors/{{flavor_id}}/action": Rule(
        CLOUD, FRESH_FLAVOR, {"addTenantAccess": {"tenant": "{other_project}"}}
    ),
    f"GET {V21}/os-availability-zone": Rule(READERS),
    f"GET {V21}/os-availability-zone/detail": Rule(READERS),
    # Keypairs belong to their user: each caller acts on their own.
    f"GET {V21}/os-keypairs": Rule(READERS),
    f"POST {V21}/os-keypairs": Rule(WRITERS, body={"keypair": {"name": "k-{uid}"}}),
    f"GET {V21}/os-keypairs/{{name}}": Rule(READERS, {"name": "keypair"}),
    f"DELETE {V21}/os-keypairs/{{name}}": Rule(WRITERS, {"name": "fresh_keypair"}),
    f"GET {V21}/os-server-groups": Rule(READERS),
    f"POST {V21}/os-server-groups": Rule(
        WRITERS, body={"server_group": {"name": "g", "policy": "affinity"}}
    ),
    f"GET {V21}/os-server-groups/{{group_id}}": Rule(READERS, GROUP, foreign=404),
    f"DELETE {V21}/os-server-groups/{{group_id}}": Rule(
        WRITERS, {"group_id": "fresh_group"}, foreign=404
    ),
    # Quotas: a project's are read by its people; only a cloud admin changes any, even its own.
    f"GET {V21}/os-quota-sets/{{project_id}}": Rule(READERS, OWN_PROJECT, foreign=403),
    f"GET {V21}/os-quota-sets/{{project_id}}/detail": Rule(READERS, OWN_PROJECT, foreign=403),
    f"GET {V21}/os-quota-sets/{{project_id}}/defaults": Rule(READERS, OWN_PROJECT),
    f"PUT {V21}/os-quota-sets/{{project_id}}": Rule(
        CLOUD, OWN_PROJECT, {"quota_set": {"instances": 50}}
    ),
    f"DELETE {V21}/os-quota-sets/{{project_id}}": Rule(CLOUD, OWN_PROJECT),
    f"GET {V21}/limits": Rule(READERS),
    # Glance: images are public (registered by cloud admins through /canopy/v1).
    "GET /image/v2/schemas/image": Rule(READERS),
    "GET /image/v2/schemas/images": Rule(READERS),
    "GET /image/v2/images": Rule(READERS),
    "GET /image/v2/images/{image_id}": Rule(READERS, {"image_id": "image"}),
    # Canopy's own admin API: the clouds behind the front door, for cloud admins only.
    "GET /canopy/v1/clouds": Rule(CLOUD),
    "GET /canopy/v1/clouds/{name}": Rule(CLOUD, {"name": "cloud"}),
    # (a config cloud: the allowed caller gets 409, edit the file)
    "POST /canopy/v1/clouds": Rule(CLOUD, body={"name": "c-{uid}", "driver": "sim"}),
    "PATCH /canopy/v1/clouds/{name}": Rule(CLOUD, {"name": "cloud"}, {"tier": 2}),
    "DELETE /canopy/v1/clouds/{name}": Rule(CLOUD, {"name": "cloud"}),
    "GET /canopy/v1/spend": Rule(CLOUD),
    "GET /canopy/v1/placements": Rule(CLOUD),
    "GET /canopy/v1/servers/{server_id}/placements": Rule(CLOUD, SERVER),
    "GET /canopy/v1/flavors": Rule(CLOUD),
    "GET /canopy/v1/images": Rule(CLOUD),
    "POST /canopy/v1/images": Rule(CLOUD, body={"name": "img-{uid}"}),
    "GET /canopy/v1/images/{image_id}": Rule(CLOUD, {"image_id": "image"}),
    "PUT /canopy/v1/images/{image_id}/map/{cloud}": Rule(
        CLOUD, {"image_id": "image", "cloud": "cloud"}, {"remote_image": "img-1"}
    ),
    "GET /canopy/v1/servers": Rule(CLOUD),
    "GET /canopy/v1/servers/{server_id}": Rule(CLOUD, SERVER),
    # ... but the free-slot search reads and holds nothing: any project's token, as leases.
    "POST /canopy/v1/leases/find-slot": Rule(
        READERS, body={"flavor": "1", "count": 1, "duration": "1h"}
    ),
    # Blazar: a project's leases, its members change them, its readers look.
    "GET /reservation/": Rule(ANYONE),
    "GET /reservation/versions": Rule(ANYONE),
    "GET /reservation/v1/plugins": Rule(READERS),
    "GET /reservation/v1/leases": Rule(READERS),
    "POST /reservation/v1/leases": Rule(WRITERS, body=LEASE_BODY),
    "GET /reservation/v1/leases/{lease_id}": Rule(READERS, LEASE, foreign=404),
    "PUT /reservation/v1/leases/{lease_id}": Rule(
        WRITERS, FRESH_LEASE, {"name": "renamed-{uid}"}, foreign=404
    ),
    "DELETE /reservation/v1/leases/{lease_id}": Rule(WRITERS, FRESH_LEASE, foreign=404),
    # Blazar's os-hosts: a cloud admin's alone.
    "GET /reservation/v1/os-hosts": Rule(CLOUD),
    "POST /reservation/v1/os-hosts": Rule(CLOUD, body={"name": "nowhere:h1"}),
    "GET /reservation/v1/os-hosts/allocations": Rule(CLOUD),
    "GET /reservation/v1/os-hosts/properties": Rule(CLOUD),
    "GET /reservation/v1/os-hosts/{host_id}": Rule(CLOUD, HOST),
    "PUT /reservation/v1/os-hosts/{host_id}": Rule(CLOUD, HOST, {"values": {"gpu": "1"}}),
    "DELETE /reservation/v1/os-hosts/{host_id}": Rule(CLOUD, HOST),
    "GET /reservation/v1/os-hosts/{host_id}/allocation": Rule(CLOUD, HOST),
    # Heat: the path names the project; another project's path is 403 (a cloud admin may
    # use any). Its readers look, its members change stacks.
    f"GET {HEAT}/stacks": Rule(READERS, PROJECT, foreign=403),
    f"POST {HEAT}/stacks": Rule(
        WRITERS, PROJECT, {"stack_name": "s-{uid}", "template": HEAT_TEMPLATE}, foreign=403
    ),
    f"POST {HEAT}/stacks/preview": Rule(
        READERS, PROJECT, {"stack_name": "p-{uid}", "template": HEAT_TEMPLATE}, foreign=403
    ),
    f"POST {HEAT}/validate": Rule(READERS, PROJECT, {"template": HEAT_TEMPLATE}, foreign=403),
    f"GET {HEAT}/resource_types": Rule(READERS, PROJECT, foreign=403),
    f"GET {HEAT}/resource_types/{{type_name}}": Rule(
        READERS, {"project_id": "project", "type_name": "resource_type"}, foreign=403
    ),
    f"GET {HEAT}/resource_types/{{type_name}}/template": Rule(
        READERS, {"project_id": "project", "type_name": "resource_type"}, foreign=403
    ),
    f"GET {HEAT}/template_versions": Rule(READERS, PROJECT, foreign=403),
    f"GET {HEAT}/template_versions/{{template_version}}/functions": Rule(
        READERS, {"project_id": "project", "template_version": "template_version"}, foreign=403
    ),
    f"GET {HEAT}/stacks/{{stack_name}}": Rule(READERS, NAMED_STACK, foreign=403),
    f"PUT {HEAT}/stacks/{{stack_name}}": Rule(READERS, NAMED_STACK, foreign=403),
    f"PATCH {HEAT}/stacks/{{stack_name}}": Rule(READERS, NAMED_STACK, foreign=403),
    f"DELETE {HEAT}/stacks/{{stack_name}}": Rule(READERS, NAMED_STACK, foreign=403),
    f"GET {HEAT}/stacks/{{stack_name}}/resources": Rule(READERS, NAMED_STACK, foreign=403),
    f"GET {HEAT}/stacks/{{stack_name}}/events": Rule(READERS, NAMED_STACK, foreign=403),
    f"GET {HEAT}/stacks/{{stack_name}}/template": Rule(READERS, NAMED_STACK, foreign=403),
    f"GET {HEAT}/stacks/{{stack_name}}/outputs": Rule(READERS, NAMED_STACK, foreign=403),
    f"GET {IDENTIFIED}": Rule(READERS, A_STACK, foreign=403),
    f"PUT {IDENTIFIED}": Rule(WRITERS, FRESH_STACK, {"template": HEAT_TEMPLATE}, foreign=403),
    f"PATCH {IDENTIFIED}": Rule(
        WRITERS, FRESH_STACK, {"template": None, "parameters": {}}, foreign=403
    ),
    f"DELETE {IDENTIFIED}": Rule(WRITERS, FRESH_STACK, foreign=403),
    f"POST {HEAT}/stacks/{{stack_name}}/actions": Rule(
        READERS, NAMED_STACK, {"check": None}, foreign=403
    ),
    f"POST {IDENTIFIED}/actions": Rule(WRITERS, FRESH_STACK, {"check": None}, foreign=403),
    f"DELETE {IDENTIFIED}/abandon": Rule(WRITERS, FRESH_STACK, foreign=403),
    f"GET {IDENTIFIED}/resources": Rule(READERS, A_STACK, foreign=403),
    f"GET {IDENTIFIED}/resources/{{resource_name}}": Rule(
        READERS, {**A_STACK, "resource_name": "resource_name"}, foreign=403
    ),
    f"PATCH {IDENTIFIED}/resources/{{resource_name}}": Rule(
        WRITERS,
        {**A_STACK, "resource_name": "resource_name"},
        {"mark_unhealthy": False},
        foreign=403,
    ),
    f"GET {IDENTIFIED}/resources/{{resource_name}}/metadata": Rule(
        READERS, {**A_STACK, "resource_name": "resource_name"}, foreign=403
    ),
    f"GET {IDENTIFIED}/resources/{{resource_name}}/events": Rule(
        READERS, {**A_STACK, "resource_name": "resource_name"}, foreign=403
    ),
    f"GET {IDENTIFIED}/resources/{{resource_name}}/events/{{event_id}}": Rule(
        READERS, {**A_STACK, "resource_name": "resource_name", "event_id": "event"}, foreign=403
    ),
    # A signal with a Keystone token needs a writer (a resource's own signal token is
    # tested in tests/api/orchestration/test_signals.py); the world's resource is a Value,
    # which takes no signals: an allowed caller gets 400.
    f"POST {IDENTIFIED}/resources/{{resource_name}}/signal": Rule(
        WRITERS, {**A_STACK, "resource_name": "resource_name"}, {}, foreign=403
    ),
    f"PUT {IDENTIFIED}/resources/{{resource_name}}/signal": Rule(
        WRITERS, {**A_STACK, "resource_name": "resource_name"}, {}, foreign=403
    ),
    f"GET {IDENTIFIED}/events": Rule(READERS, A_STACK, foreign=403),
    f"GET {IDENTIFIED}/outputs": Rule(READERS, A_STACK, foreign=403),
    f"GET {IDENTIFIED}/outputs/{{output_key}}": Rule(
        READERS, {**A_STACK, "output_key": "output_key"}, foreign=403
    ),
    f"GET {IDENTIFIED}/template": Rule(READERS, A_STACK, foreign=403),
    f"GET {HEAT}/software_deployments": Rule(READERS, PROJECT, foreign=403),
    f"GET {HEAT}/software_deployments/metadata/{{server_id}}": Rule(
        READERS, {**PROJECT, "server_id": "server"}, foreign=403
    ),
    # Software configs and deployments made through the API: readers read, members write.
    f"GET {HEAT}/software_configs": Rule(READERS, PROJECT, foreign=403),
    f"POST {HEAT}/software_configs": Rule(WRITERS, PROJECT, {"config": "x"}, foreign=403),
    f"GET {HEAT}/software_configs/{{config_id}}": Rule(
        READERS, {**PROJECT, "config_id": "software_config"}, foreign=403
    ),
    f"DELETE {HEAT}/software_configs/{{config_id}}": Rule(
        WRITERS, {**PROJECT, "config_id": "fresh_software_config"}, foreign=403
    ),
    # demo's config: a cloud admin deploying it in another project gets 400 (not found).
    f"POST {HEAT}/software_deployments": Rule(
        WRITERS, PROJECT, {"config_id": "{demo_config}", "server_id": "s"}, foreign=403
    ),
    f"GET {HEAT}/software_deployments/{{deployment_id}}": Rule(
        READERS, {**PROJECT, "deployment_id": "software_deployment"}, foreign=403
    ),
    f"PUT {HEAT}/software_deployments/{{deployment_id}}": Rule(
        WRITERS,
        {**PROJECT, "deployment_id": "fresh_software_deployment"},
        {"status": "COMPLETE"},
        foreign=403,
    ),
    f"DELETE {HEAT}/software_deployments/{{deployment_id}}": Rule(
        WRITERS, {**PROJECT, "deployment_id": "fresh_software_deployment"}, foreign=403
    ),
    # Notifications: a project's subscriptions, its members change them, its readers look.
    f"GET {SUBS}": Rule(READERS),
    f"POST {SUBS}": Rule(WRITERS, body=SUB_BODY),
    f"GET {SUBS}/{{subscription_id}}": Rule(READERS, SUB, foreign=404),
    f"PATCH {SUBS}/{{subscription_id}}": Rule(WRITERS, FRESH_SUB, {"enabled": False}, foreign=404),
    f"DELETE {SUBS}/{{subscription_id}}": Rule(WRITERS, FRESH_SUB, foreign=404),
    f"GET {SUBS}/{{subscription_id}}/deliveries": Rule(READERS, SUB, foreign=404),
    f"POST {SUBS}/{{subscription_id}}/replay": Rule(WRITERS, SUB, {}, foreign=404),
    f"POST {SUBS}/{{subscription_id}}/skip": Rule(WRITERS, SUB, {}, foreign=404),
}


@dataclass(frozen=True)
class Variant:
    """A request whose query or body asks for more than its route's rule gives."""

    route: str
    allowed: frozenset[str]
    query: str = ""
    path: dict[str, str] = field(default_factory=dict)
    body: Any = None


VARIANTS = (
    # Every project's servers: Nova's all_tenants, a cloud admin's alone.
    Variant(f"GET {V21}/servers", CLOUD, "all_tenants=1"),
    Variant(f"GET {V21}/servers/detail", CLOUD, "all_tenants=1"),
    # Another user's keypairs (Nova 2.10's user_id).
    Variant(f"GET {V21}/os-keypairs", CLOUD, "user_id={other_user}"),
    Variant(f"GET {V21}/os-keypairs/{{name}}", CLOUD, "user_id={other_user}", {"name": "keypair"}),
    # Another project's limits.
    Variant(f"GET {V21}/limits", CLOUD, "tenant_id={other_project}"),
    # Every project's events.
    Variant(f"POST {SUBS}", CLOUD, body={**SUB_BODY, "all_projects": True}),
    # A server forced onto a host (a cloud), Nova's zone:host.
    Variant(
        f"POST {V21}/servers",
        CLOUD,
        body={"server": {**SERVER_BODY["server"], "availability_zone": "private:private"}},
    ),
)


# The test ------------------------------------------------------------------------------


def _routes(app: FastAPI) -> set[str]:
    """Every operation in the app's OpenAPI document, as 'METHOD /path'."""
    doc = app.openapi()
    return {f"{m.upper()} {path}" for path, ops in doc["paths"].items() for m in ops}


async def test_every_route_has_a_row_and_every_row_a_route(api: Api) -> None:
    r = await api.client.get("/openapi.json")
    served = {f"{m.upper()} {path}" for path, ops in r.json()["paths"].items() for m in ops}
    assert served == _routes(api.app)
    missing = sorted(served - set(TABLE))
    assert not missing, f"routes with no authorisation rule in TABLE: {missing}"
    stale = sorted(set(TABLE) - served)
    assert not stale, f"rows of TABLE for routes that do not exist: {stale}"
    for variant in VARIANTS:
        assert variant.route in TABLE


@dataclass(frozen=True)
class Outcome:
    route: str
    caller: str
    foreign: bool
    status: int
    problem: str

    def __str__(self) -> str:
        whose = " (another project's)" if self.foreign else ""
        return f"{self.route}{whose} as {self.caller}: {self.status}: {self.problem}"


async def _call(
    w: World,
    anon: httpx.AsyncClient,
    route: str,
    who: str,
    *,
    foreign: bool,
    path: dict[str, str],
    body: Any,
    subject: str | None = None,
    query: str = "",
) -> tuple[str, httpx.Response]:
    method, template = route.split(" ", 1)
    values = {p: await w.value(f, who, foreign) for p, f in path.items()}
    url = template.format(**values) + (f"?{fill(query, w.objects)}" if query else "")
    headers = {"OpenStack-API-Version": "compute 2.79"}
    if who != NO_TOKEN:
        headers["X-Auth-Token"] = w.people[who].token
    if subject is not None:
        headers["X-Subject-Token"] = await w.subject(subject, who, foreign)
    content = None
    if body == "login":
        member = w.people[MEMBER]
        content = fill({"auth": login_body(member.name, member.project)}, w.objects)
    elif body is not None:
        content = fill(body, w.objects)
    r = await anon.request(method, url, headers=headers, json=content)
    return template, r


def _judge(
    route: str, who: str, foreign: bool, r: httpx.Response, allowed: bool, hidden: int | None
) -> str | None:
    """What is wrong with this answer (None if it is what the table says)."""
    path = r.request.url.path
    if allowed:
        if r.status_code in (401, 403):
            return "refused, but the table allows it"
        if r.status_code >= 500:
            return "a server error"
        if foreign and r.status_code == 404:
            return "a cloud admin cannot see another project's object"
        return None
    want = hidden if hidden is not None else 401 if who == NO_TOKEN else 403
    if r.status_code != want:
        return f"expected {want}"
    return fault_shape(path, r) if want in (401, 403) else None


def _expected(
    rule_allowed: frozenset[str], who: str, foreign: bool, hidden: int | None
) -> tuple[bool, int | None]:
    """Whether `who` is allowed, and the refusal status for another project's object."""
    if who not in rule_allowed:
        return False, None
    if foreign and who != CLOUD_ADMIN and hidden is not None:
        return False, hidden
    return True, None


async def test_who_may_do_what_on_every_route(api: Api) -> None:
    w = await build_world(api)
    transport = httpx.ASGITransport(app=api.app)
    wrong: list[Outcome] = []
    async with httpx.AsyncClient(transport=transport, base_url="http://canopy.test") as anon:
        for route in sorted(TABLE, key=_order):
            rule = TABLE[route]
            sides = (False, True) if rule.foreign is not None or _names_objects(rule) else (False,)
            for foreign in sides:
                for who in CALLERS:
                    allowed, hidden = _expected(rule.allowed, who, foreign, rule.foreign)
                    _, r = await _call(
                        w,
                        anon,
                        route,
                        who,
                        foreign=foreign,
                        path=rule.path,
                        body=rule.body,
                        subject=rule.subject,
                    )
                    problem = _judge(route, who, foreign, r, allowed, hidden)
                    if problem:
                        wrong.append(Outcome(route, who, foreign, r.status_code, problem))
                    if route.endswith("/password") and r.status_code == 204:
                        await w.refresh()  # a password change revoked the caller's tokens
        for v in VARIANTS:
            for who in CALLERS:
                _, r = await _call(
                    w, anon, v.route, who, foreign=False, path=v.path, body=v.body, query=v.query
                )
                problem = _judge(v.route, who, False, r, who in v.allowed, None)
                if problem:
                    wrong.append(
                        Outcome(f"{v.route}?{v.query}", who, False, r.status_code, problem)
                    )
    assert not wrong, "\n".join(map(str, wrong))


def _order(route: str) -> tuple[int, bool, str]:
    """Reads first, then writes, deletes last, so nothing a request removes is needed later;
    the quota reset last of all (the projects' quotas allow the servers the others make)."""
    order = {"GET": 0, "HEAD": 0, "POST": 1, "PUT": 1, "PATCH": 1, "DELETE": 2}
    return order[route.split(" ")[0]], "os-quota-sets" in route, route


def _names_objects(rule: Rule) -> bool:
    """Whether the route acts on a project's objects (so another project's are tried too)."""
    return bool(rule.subject) or any(
        f in ("server", "fresh_server", "group", "fresh_group", "project", "user")
        for f in rule.path.values()
    )
