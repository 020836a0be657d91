"""external_id: a resource that stands for an existing canopy server or keypair. Nothing is
made for it, its attributes are read from it, a stack delete leaves it, another project's
server is "not found" as a missing one is (and so is one being deleted), a server a stack
holds is refused, and an update may not change which one it is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from canopy.bootstrap import ensure_project
from canopy.domain.context import RequestContext
from canopy.domain.errors import InvalidRequest
from canopy.domain.states import DesiredState
from canopy.orchestration.outputs import bound_of, outputs
from canopy.orchestration.service import StackService
from canopy.services import keypairs
from canopy.services.servers import CreateServer
from canopy.store.models import Keypair, Server, Stack, StackResource
from tests.controllers.harness import Plane, make_plane

from .helpers import CLOUDS, create, delete_stack, hot, live_servers, resources, server, settle


def external(server_id: str, **more: Any) -> dict[str, Any]:
    """hot/external_resource.yaml, with more resources."""
    return {
        "heat_template_version": "2016-10-14",
        "parameters": {"external_server_id": {"type": "string", "default": server_id}},
        "resources": {
            "external_server": {
                "type": "OS::Nova::Server",
                "external_id": {"get_param": "external_server_id"},
            },
            **more,
        },
        "outputs": {
            "server_name": {"value": {"get_attr": ["external_server", "name"]}},
            "server_id": {"value": {"get_resource": "external_server"}},
        },
    }


async def _active_server(p: Plane, ctx: RequestContext | None = None) -> str:
    req = CreateServer(name="outside", flavor="m1.small", image="cirros")
    [made] = await p.service.create(ctx or p.ctx, req)

    async def active() -> bool:
        async with p.db.read() as s:
            found = await s.get(Server, made.id)
            return found is not None and found.status == "ACTIVE"

    await p.run_until(active, steps=50)
    return made.id


async def _update(p: Plane, sid: str, body: dict[str, Any]) -> None:
    async with p.db.session() as s:
        svc = StackService(p.settings, p.clock)
        stack = await svc.find(s, p.ctx.project_id, sid, lock=True)
        await svc.update(s, p.ctx, stack, body, patch=True)


async def _stack_count(p: Plane) -> int:
    async with p.db.read() as s:
        return int((await s.execute(select(func.count()).select_from(Stack))).scalar_one())


async def test_an_external_server_is_read_not_made_and_outlives_the_stack(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        vm = await _active_server(p)
        t = external(
            vm,
            name={"type": "OS::Heat::Value", "properties": {
                "value": {"get_attr": ["external_server", "name"]}}},
        )  # fmt: skip
        sid = await create(p, "ext", t)
        done = await settle(p, sid)
        assert (done.action, done.status) == ("CREATE", "COMPLETE"), done.status_reason
        rows = await resources(p, sid)
        row = rows["external_server"]
        assert (row.physical_resource_id, row.server_id) == (vm, vm)
        assert row.properties == {}
        assert row.attributes["name"] == "outside"
        assert rows["name"].attributes["value"] == "outside"
        assert [s.id for s in await live_servers(p)] == [vm]  # nothing new was booted
        async with p.db.read() as s:
            q = select(StackResource).where(StackResource.stack_id == sid)
            shown = outputs(bound_of(done, "RegionOne"), list((await s.execute(q)).scalars()))
        assert {o["output_key"]: o["output_value"] for o in shown} == {
            "server_name": "outside",
            "server_id": vm,
        }

        await delete_stack(p, sid)
        gone = await settle(p, sid)
        assert (gone.action, gone.status) == ("DELETE", "COMPLETE"), gone.status_reason
        for _ in range(5):
            await p.step()
        [kept] = await live_servers(p)
        assert (kept.id, kept.status) == (vm, "ACTIVE")
    finally:
        await p.close()


async def test_another_projects_server_is_refused_as_a_missing_one_is(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        project = await ensure_project(p.db, p.clock, "other", quotas={"instances": -1})
        other = RequestContext(project_id=project, user_id="u9", roles=frozenset({"member"}))
        theirs = await _active_server(p, other)
        missing = "da5b940a-14ff-4884-8e95-5cf6a3a1028f"
        reasons = []
        for ident in (theirs, missing):
            with pytest.raises(InvalidRequest) as e:
                await create(p, "ext", external(ident))
            reasons.append(str(e.value).replace(ident, "ID"))
        assert reasons[0] == reasons[1]
        assert reasons[0] == (
            "resources.external_server: Invalid external resource: Resource ID "
            "(OS::Nova::Server) can not be found."
        )
        assert await _stack_count(p) == 0
    finally:
        await p.close()


async def test_a_server_gone_before_the_create_step_fails_the_resource(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        vm = await _active_server(p)
        sid = await create(p, "ext", external(vm))  # validated while it exists
        async with p.db.session() as s:
            row = await s.get(Server, vm)
            assert row is not None
            row.deleted = True
        done = await settle(p, sid)
        assert (done.action, done.status) == ("CREATE", "FAILED")
        assert done.status_reason.endswith(
            f"Invalid external resource: Resource {vm} (OS::Nova::Server) can not be found."
        )
    finally:
        await p.close()


async def test_a_server_another_stack_holds_is_refused_made_or_taken(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        owner = await create(p, "owner", hot({"vm": server()}))
        done = await settle(p, owner)
        assert (done.action, done.status) == ("CREATE", "COMPLETE"), done.status_reason
        made = (await resources(p, owner))["vm"].server_id
        assert made is not None
        outside = await _active_server(p)
        taker = await create(p, "taker", external(outside))
        assert (await settle(p, taker)).status == "COMPLETE"
        # The server a stack made, and one another stack took as external: both held.
        for ident in (made, outside):
            with pytest.raises(InvalidRequest) as e:
                await create(p, "other", external(ident))
            assert str(e.value) == (
                f"resources.external_server: Invalid external resource: Server {ident} "
                "already belongs to a stack."
            )
        # So is the stack's own server named again by a new resource of it.
        with pytest.raises(InvalidRequest) as e:
            await _update(p, owner, {"template": external(made, vm=server())})
        assert f"Server {made} already belongs to a stack." in str(e.value)
        assert await _stack_count(p) == 2
        assert (await settle(p, owner)).action == "CREATE"
    finally:
        await p.close()


async def test_a_server_taken_before_the_create_step_fails_the_resource(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        vm = await _active_server(p)
        # Both validated before either took it; whichever takes it first has it.
        ids = [await create(p, name, external(vm)) for name in ("first", "second")]
        done = {sid: await settle(p, sid) for sid in ids}
        assert sorted(d.status for d in done.values()) == ["COMPLETE", "FAILED"]
        [lost] = [sid for sid, d in done.items() if d.status == "FAILED"]
        assert done[lost].action == "CREATE"
        assert done[lost].status_reason.endswith(
            f"Invalid external resource: Server {vm} already belongs to a stack."
        )
        assert (await resources(p, lost))["external_server"].server_id is None
    finally:
        await p.close()


async def test_a_server_being_deleted_is_refused_as_a_missing_one_is(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        vm = await _active_server(p)
        async with p.db.session() as s:
            row = await s.get(Server, vm)
            assert row is not None
            row.desired_state = DesiredState.DELETED
        with pytest.raises(InvalidRequest) as e:
            await create(p, "ext", external(vm))
        assert str(e.value) == (
            f"resources.external_server: Invalid external resource: Resource {vm} "
            "(OS::Nova::Server) can not be found."
        )
        assert await _stack_count(p) == 0
    finally:
        await p.close()


async def test_external_id_is_refused_on_a_type_canopy_cannot_take(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        t = {
            "heat_template_version": "2016-10-14",
            "resources": {"r": {"type": "OS::Heat::RandomString", "external_id": "abc"}},
        }
        with pytest.raises(InvalidRequest) as e:
            await create(p, "ext", t)
        assert str(e.value).startswith(
            "resources.r.external_id: external_id is not supported for OS::Heat::RandomString"
        )
        assert "OS::Nova::Server" in str(e.value)
        assert await _stack_count(p) == 0
    finally:
        await p.close()


async def test_an_update_keeps_the_external_server_and_refuses_to_change_it(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        vm = await _active_server(p)
        other = await _active_server(p)
        sid = await create(p, "ext", external(vm))
        assert (await settle(p, sid)).status == "COMPLETE"
        before = (await resources(p, sid))["external_server"]

        # Another resource added: the external one stays as it is.
        await _update(p, sid, {"template": external(vm, more=server())})
        done = await settle(p, sid)
        assert (done.action, done.status) == ("UPDATE", "COMPLETE"), done.status_reason
        after = (await resources(p, sid))["external_server"]
        assert (after.id, after.physical_resource_id) == (before.id, vm)

        # Changing the id (or dropping it for a new server) is Heat's "not supported".
        for body in (
            {"parameters": {"external_server_id": other}},
            {"template": {**external(vm), "resources": {"external_server": server()}}},
        ):
            with pytest.raises(InvalidRequest) as e:
                await _update(p, sid, body)
            assert str(e.value) == (
                "Update to property external_id of external_server (OS::Nova::Server) is "
                "not supported."
            )
        still = await settle(p, sid)
        assert (still.action, still.status) == ("UPDATE", "COMPLETE")
        assert still.parameters.get("external_server_id") is None

        await delete_stack(p, sid)
        assert (await settle(p, sid)).status == "COMPLETE"
        assert {s.id for s in await live_servers(p)} == {vm, other}
    finally:
        await p.close()


async def test_an_external_keypair_is_the_users_by_name_and_stays(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        _, public = keypairs.generate_ssh()
        async with p.db.session() as s:
            await keypairs.create(
                s, p.settings, project_id=p.ctx.project_id, user_id=p.ctx.user_id,
                name="mine", key_type="ssh", public_key=public, now=p.clock.now(),
            )  # fmt: skip
        t = {
            "heat_template_version": "2016-10-14",
            "resources": {
                "key": {"type": "OS::Nova::KeyPair", "external_id": "mine"},
                "vm": server(key_name={"get_resource": "key"}),
            },
            "outputs": {"public": {"value": {"get_attr": ["key", "public_key"]}}},
        }
        sid = await create(p, "ext", t)
        done = await settle(p, sid)
        assert (done.action, done.status) == ("CREATE", "COMPLETE"), done.status_reason
        rows = await resources(p, sid)
        assert rows["key"].physical_resource_id == "mine"
        assert rows["key"].attributes["public_key"] == public
        [vm] = await live_servers(p)
        assert vm.key_name == "mine"
        await delete_stack(p, sid)
        assert (await settle(p, sid)).status == "COMPLETE"
        async with p.db.read() as s:
            names = list(await s.scalars(select(Keypair.name)))
        assert names == ["mine"]

        missing = {**t, "resources": {"key": {"type": "OS::Nova::KeyPair", "external_id": "x"}}}
        with pytest.raises(InvalidRequest, match=r"Resource x \(OS::Nova::KeyPair\) can not"):
            await create(p, "ext2", missing)
    finally:
        await p.close()
