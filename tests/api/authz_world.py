"""The world the authorisation test runs in: five callers with real tokens, the objects of
project `demo` and of another project, and the requests built from a table row."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import select

from canopy.api.identity.catalog import build_catalog
from canopy.credentials import vault
from canopy.domain.context import RequestContext
from canopy.notifications import subscriptions
from canopy.notifications.subscriptions import NewSubscription
from canopy.orchestration.service import StackService
from canopy.orchestration.software_checks import config_fields
from canopy.orchestration.software_rows import new_config
from canopy.reservations.service import LeaseService
from canopy.services import app_credentials, flavors, identity, keypairs, quotas, server_groups
from canopy.services.identity import ROLE_IDS
from canopy.services.passwords import hash_password
from canopy.services.servers import CreateServer
from canopy.store.models import Image, InstanceAction, SoftwareDeploymentRow, StackEvent
from tests.api.conftest import Api
from tests.api.tokens import caller

PASSWORD = "pw"
# A stack that completes in one engine pass: a value, and an output.
STACK_TEMPLATE: dict[str, Any] = {
    "heat_template_version": "2018-08-31",
    "resources": {"v": {"type": "OS::Heat::Value", "properties": {"value": "x"}}},
    "outputs": {"out": {"value": {"get_attr": ["v", "value"]}}},
}
# caller -> (user, role, project)
PEOPLE = {
    "cloud admin": ("root", "admin", "admin"),
    "project admin": ("pat", "admin", "demo"),
    "member": ("alice", "member", "demo"),
    "reader": ("rita", "reader", "demo"),
}
OTHER = ("olga", "member", "other")  # owns the other project's objects
_PUBLIC_KEY = keypairs.generate_ssh()[1]


def login_body(name: str, project: str) -> dict[str, Any]:
    """The `auth` of a password login scoped to a project, as keystoneauth sends it."""
    return {
        "identity": {
            "methods": ["password"],
            "password": {
                "user": {"name": name, "domain": {"name": "Default"}, "password": PASSWORD}
            },
        },
        "scope": {"project": {"name": project, "domain": {"name": "Default"}}},
    }


@dataclass
class Person:
    user_id: str
    project_id: str
    name: str
    project: str
    token: str = ""


@dataclass
class World:
    api: Api
    people: dict[str, Person] = field(default_factory=dict)
    objects: dict[str, str] = field(default_factory=dict)  # fixed fixtures, per project side

    @property
    def client(self) -> httpx.AsyncClient:
        return self.api.client

    async def login(self, name: str, project: str) -> str:
        """A token from POST /identity/v3/auth/tokens, as keystoneauth asks for one."""
        body = {"auth": login_body(name, project)}
        r = await self.client.post("/identity/v3/auth/tokens", json=body)
        assert r.status_code == 201, r.text
        return r.headers["X-Subject-Token"]

    def ctx(self, who: str) -> RequestContext:
        p = self.people[who]
        return RequestContext(project_id=p.project_id, user_id=p.user_id)

    async def new_server(self, who: str) -> str:
        req = CreateServer(
            name="vm", flavor="1", image="cirros", tags=("tag",), metadata={"meta_key": "v"}
        )
        [server] = await self.api.plane.service.create(self.ctx(who), req)
        return server.id

    async def new_lease(self, who: str) -> str:
        plane = self.api.plane
        body = {
            "name": f"l-{uuid.uuid4().hex[:8]}",
            "start_date": "2030-01-01 00:00",
            "end_date": "2030-01-01 01:00",
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
        }
        async with plane.db.session() as s:
            svc = LeaseService(plane.settings, plane.clock, plane.service)
            return (await svc.create(s, self.ctx(who), body)).id

    async def new_stack(self, who: str) -> tuple[str, str]:
        """A stack of `who`'s project, created and stepped to CREATE_COMPLETE: (name, id)."""
        plane = self.api.plane
        name = f"st-{uuid.uuid4().hex[:8]}"
        async with plane.db.session() as s:
            svc = StackService(plane.settings, plane.clock)
            stack = await svc.create(s, self.ctx(who), name, {"template": STACK_TEMPLATE})
            stack_id = stack.id
        await plane.worker.orchestration.run_once()
        return name, stack_id

    async def new_software_config(self, who: str) -> str:
        plane = self.api.plane
        async with plane.db.session() as s:
            row = new_config(self.people[who].project_id, config_fields({}), plane.clock.now())
            s.add(row)
            return row.id

    async def new_software_deployment(self, who: str) -> str:
        plane = self.api.plane
        config_id = await self.new_software_config(who)
        async with plane.db.session() as s:
            row = SoftwareDeploymentRow(
                id=str(uuid.uuid4()),
                project_id=self.people[who].project_id,
                config_id=config_id,
                server_id="a-server",
                status_reason="",
                created_at=plane.clock.now(),
            )
            s.add(row)
            return row.id

    async def new_subscription(self, who: str) -> str:
        plane = self.api.plane
        key = vault(plane.settings.secret_key, plane.settings.data_path)
        req = NewSubscription(kind="webhook", url="https://hooks.example.com/x")
        async with plane.db.session() as s:
            sub, _ = await subscriptions.create(
                s, key, plane.settings.notifications, self.ctx(who), req, plane.clock.now()
            )
            return sub.id

    async def new_group(self, who: str) -> str:
        async with self.api.plane.db.session() as s:
            g = await server_groups.create(
                s,
                self.api.plane.settings,
                self.ctx(who),
                "g",
                "affinity",
                self.api.plane.clock.now(),
            )
            return g.id

    async def new_keypair(self, who: str, name: str | None = None) -> str:
        p = self.people[who]
        name = name or f"k-{uuid.uuid4().hex[:8]}"
        async with self.api.plane.db.session() as s:
            await keypairs.create(
                s,
                self.api.plane.settings,
                project_id=p.project_id,
                user_id=p.user_id,
                name=name,
                key_type="ssh",
                public_key=_PUBLIC_KEY,
                now=self.api.plane.clock.now(),
            )
        return name

    async def new_user(self, *, grant_on: str | None = None) -> str:
        async with self.api.plane.db.session() as s:
            u = await identity.create_user(
                s, f"u-{uuid.uuid4().hex[:8]}", hash_password(PASSWORD), self.api.plane.clock.now()
            )
            if grant_on is not None:
                await identity.grant(s, u.id, grant_on, "member")
            return u.id

    async def new_app_cred(self, who: str) -> str:
        """A new application credential of `who`'s, on their project with their roles."""
        p = self.people[who]
        now = self.api.plane.clock.now()
        async with self.api.plane.db.session() as s:
            roles = tuple(await identity.roles_on(s, p.user_id, p.project_id))
            want = app_credentials.NewCredential(
                f"ac-{uuid.uuid4().hex[:8]}", None, hash_password(PASSWORD), None, False, None
            )
            c = await app_credentials.create(s, p.user_id, p.project_id, roles, want, now)
            return c.id

    async def new_flavor(self) -> str:
        """A private flavor with the extra spec `hw:cpu_policy`, for one request to change."""
        plane = self.api.plane
        async with plane.db.session() as s:
            want = flavors.NewFlavor(
                id=f"f-{uuid.uuid4().hex[:8]}",
                name=f"f-{uuid.uuid4().hex[:8]}",
                ram_mb=64,
                vcpus=1,
                disk_gb=0,
                is_public=False,
            )
            f = await flavors.create(s, plane.clock, want)
            f.extra_specs = {"hw:cpu_policy": "shared"}
            return f.id

    async def new_project(self) -> str:
        async with self.api.plane.db.session() as s:
            p = await identity.create_project(
                s, f"p-{uuid.uuid4().hex[:8]}", self.api.plane.clock.now()
            )
            return p.id

    async def value(self, fixture: str, who: str, foreign: bool) -> str:
        """The path value `fixture` names, for caller `who`; the other project's if `foreign`."""
        owner = "other" if foreign else "member"
        me = "other" if foreign else who if who in self.people else "member"
        if fixture in (
            "server",
            "group",
            "request_id",
            "lease",
            "subscription",
            "software_config",
            "software_deployment",
        ):
            return self.objects[f"{fixture}:{owner}"]
        if fixture == "fresh_server":
            return await self.new_server(owner)
        if fixture == "fresh_group":
            return await self.new_group(owner)
        if fixture == "fresh_lease":
            return await self.new_lease(owner)
        if fixture in ("stack_name", "stack_id", "event"):
            return self.objects[f"{fixture}:{owner}"]
        if fixture == "fresh_stack_name":
            name, self.objects["fresh_stack_id"] = await self.new_stack(owner)
            return name
        if fixture == "fresh_software_config":
            return await self.new_software_config(owner)
        if fixture == "fresh_software_deployment":
            return await self.new_software_deployment(owner)
        if fixture == "fresh_subscription":
            return await self.new_subscription(owner)
        if fixture == "project":
            return self.people[me].project_id
        if fixture == "user":
            return self.people[me].user_id
        if fixture == "keypair":
            return "mine"
        if fixture == "fresh_flavor":
            return await self.new_flavor()
        if fixture == "fresh_keypair":
            return await self.new_keypair(me)
        if fixture == "fresh_project":
            return await self.new_project()
        if fixture == "fresh_user":
            return await self.new_user()
        if fixture == "unknown_host":
            return "999999"  # os-hosts: an admin gets 404, anyone else 403 first
        if fixture == "own_user":  # the caller's own, even on the other project's side
            return self.people[who if who in self.people else "member"].user_id
        if fixture == "app_cred":
            return await self.new_app_cred(me)
        if fixture == "fresh_member":
            return await self.new_user(grant_on=self.people[me].project_id)
        return self.objects[fixture]

    async def subject(self, kind: str, who: str, foreign: bool) -> str:
        """An X-Subject-Token: the caller's own token, a fresh one, or the other user's."""
        if foreign:
            return await self.login("olga", "other")
        if who not in self.people:
            return self.people["member"].token
        p = self.people[who]
        return await self.login(p.name, p.project) if kind == "fresh_token" else p.token

    async def refresh(self) -> None:
        """New tokens for everyone (after a password change revoked a caller's)."""
        for p in self.people.values():
            p.token = await self.login(p.name, p.project)


async def build_world(api: Api) -> World:
    w = World(api)
    plane = api.plane
    for who, (name, role, project) in (*PEOPLE.items(), ("other", OTHER)):
        c = await caller(
            plane.db, plane.clock, project=project, user=name, role=role, password=PASSWORD
        )
        w.people[who] = Person(c.user_id, c.project_id, name, project)
    await w.refresh()
    unlimited = {"instances": -1, "cores": -1, "ram": -1, "server_groups": -1}
    async with plane.db.session() as s:
        for who in ("cloud admin", "other"):
            await quotas.update(s, plane.settings, w.people[who].project_id, "", unlimited)
    for who in w.people:
        await w.new_keypair(who, "mine")
    for side in ("member", "other"):
        w.objects[f"server:{side}"] = await w.new_server(side)
        w.objects[f"group:{side}"] = await w.new_group(side)
        w.objects[f"lease:{side}"] = await w.new_lease(side)
        name, stack_id = await w.new_stack(side)
        w.objects[f"stack_name:{side}"], w.objects[f"stack_id:{side}"] = name, stack_id
        async with plane.db.read() as s:
            w.objects[f"event:{side}"] = str(
                await s.scalar(
                    select(StackEvent.id).where(
                        StackEvent.stack_id == stack_id, StackEvent.resource_name == "v"
                    )
                )
            )
        w.objects[f"subscription:{side}"] = await w.new_subscription(side)
        w.objects[f"software_config:{side}"] = await w.new_software_config(side)
        w.objects[f"software_deployment:{side}"] = await w.new_software_deployment(side)
    async with plane.db.read() as s:
        for side in ("member", "other"):
            sid = w.objects[f"server:{side}"]
            rid = await s.scalar(
                select(InstanceAction.request_id).where(InstanceAction.server_id == sid)
            )
            assert rid is not None
            w.objects[f"request_id:{side}"] = rid
        image = await s.scalar(select(Image.id).where(Image.name == "cirros"))
        assert image is not None
    catalog = build_catalog(plane.settings)
    w.objects.update(
        tag="tag",
        meta_key="meta_key",
        flavor="1",
        extra_spec="hw:cpu_policy",
        image=image,
        cloud="private",
        role=ROLE_IDS["member"],
        region=plane.settings.identity.region,
        domain="default",
        service=catalog[0]["id"],
        endpoint=catalog[0]["endpoints"][0]["id"],
        other_user=w.people["other"].user_id,
        other_project=w.people["other"].project_id,
        resource_type="OS::Heat::Value",
        template_version="heat_template_version.2018-08-31",
        resource_name="v",
        output_key="out",
        demo_config=w.objects["software_config:member"],
    )
    return w


def fill(template: Any, values: dict[str, str]) -> Any:
    """A body or query with `{uid}` and the world's `{names}` filled in."""
    if isinstance(template, str):
        return template.format(uid=uuid.uuid4().hex[:8], **values)
    if isinstance(template, dict):
        return {k: fill(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, values) for v in template]
    return template


def fault_shape(path: str, response: httpx.Response) -> str | None:
    """What is wrong with a 401/403 body for the service that owns `path` (None: right)."""
    if response.request.method == "HEAD":
        return None
    try:
        body = response.json()
    except ValueError:
        return f"not JSON: {response.text[:80]!r}"
    code = response.status_code
    if path.startswith("/identity"):
        ok = isinstance(body.get("error"), dict) and body["error"].get("code") == code
        if ok and code == 401 and "www-authenticate" not in response.headers:
            return "a Keystone 401 without WWW-Authenticate"
    elif path.startswith("/reservation") and code == 401:  # Flask's body (a refused token)
        ok = set(body) == {"error", "error_message"} and body["error"] == code
    elif path.startswith("/reservation"):  # Blazar's own (the policy's refusal)
        ok = set(body) == {"error_code", "error_message", "error_name"}
        ok = ok and body["error_code"] == code and body["error_name"] == code
    elif path.startswith("/orchestration"):
        error = body.get("error")
        ok = body.get("code") == code and isinstance(error, dict) and bool(error.get("message"))
    elif path.startswith("/image"):
        ok = body.get("code", "").startswith(str(code)) and bool(body.get("message"))
    else:
        name = {401: "unauthorized", 403: "forbidden"}[code]
        ok = list(body) == [name] and body[name].get("code") == code
    return None if ok else f"not the service's fault format: {body}"
