"""OS::Nova::Server changes Heat makes in place (name, metadata, tags, user_data under
user_data_update_policy IGNORE) keep the server; the others still replace it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from canopy.domain.errors import InvalidRequest
from canopy.orchestration.resources.registry import resource_type
from canopy.orchestration.service import StackService
from canopy.store.models import OutboxEvent, Server
from canopy.store.server_extras import tags_of
from tests.controllers.harness import Plane, make_plane

from .helpers import CLOUDS, create, events, hot, live_servers, resources, server, settle


async def update(p: Plane, sid: str, template: dict[str, object]) -> None:
    async with p.db.session() as s:
        svc = StackService(p.settings, p.clock)
        stack = await svc.find(s, p.ctx.project_id, sid, lock=True)
        await svc.update(s, p.ctx, stack, {"template": template}, patch=False)


async def _updated(p: Plane, sid: str, **props: Any) -> Server:
    """The one live server after an update of the stack's `vm` to `props`, which must
    complete."""
    await update(p, sid, hot({"vm": server(**props)}))
    done = await settle(p, sid)
    assert (done.action, done.status) == ("UPDATE", "COMPLETE"), done.status_reason
    [vm] = await live_servers(p)
    return vm


async def _tags(p: Plane, server_id: str) -> list[str]:
    async with p.db.read() as s:
        return (await tags_of(s, [server_id])).get(server_id, [])


async def test_name_metadata_and_tags_change_in_place(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        first = {"name": "web", "metadata": {"role": "web", "n": 1}, "tags": ["a", "b"]}
        sid = await create(p, "inplace", hot({"vm": server(**first)}))
        assert (await settle(p, sid)).status == "COMPLETE"
        [old] = await live_servers(p)
        assert old.metadata_ == {"role": "web", "n": "1"}  # non-strings as JSON, as Heat
        assert await _tags(p, old.id) == ["a", "b"]

        vm = await _updated(p, sid, name="web2", metadata={"role": "db"}, tags=["c"])
        assert vm.id == old.id  # the same server: nothing replaced
        assert (vm.name, vm.metadata_) == ("web2", {"role": "db"})
        assert await _tags(p, vm.id) == ["c"]
        rows = await resources(p, sid)
        assert rows["vm"].server_id == old.id
        assert rows["vm"].attributes["show"]["metadata"] == {"role": "db"}
        kinds = [(e.action, e.status) for e in await events(p, sid) if e.resource_name == "vm"]
        assert ("UPDATE", "COMPLETE") in kinds and kinds.count(("CREATE", "COMPLETE")) == 1

        # Removing the properties empties them, still in place.
        vm = await _updated(p, sid, name="web2")
        assert vm.id == old.id and vm.metadata_ == {}
        assert await _tags(p, vm.id) == []
    finally:
        await p.close()


async def test_a_user_data_change_replaces_unless_the_policy_is_ignore(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "ud", hot({"vm": server(user_data="one")}))
        assert (await settle(p, sid)).status == "COMPLETE"
        [first] = await live_servers(p)
        # REPLACE is the default: a new server.
        second = await _updated(p, sid, user_data="two")
        assert second.id != first.id
        # IGNORE keeps the server (and the user data it booted with).
        kept = await _updated(p, sid, user_data="three", user_data_update_policy="IGNORE")
        assert kept.id == second.id
        rows = await resources(p, sid)
        assert rows["vm"].properties["user_data"] == "three"
        # Back to REPLACE with a change: replaced again.
        third = await _updated(p, sid, user_data="four", user_data_update_policy="REPLACE")
        assert third.id != kept.id
    finally:
        await p.close()


async def test_a_refused_metadata_change_fails_the_update_and_keeps_the_server(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "refused", hot({"vm": server(metadata={"a": "1"})}))
        assert (await settle(p, sid)).status == "COMPLETE"
        [old] = await live_servers(p)
        # A reserved key: Nova's 400 becomes the resource's failure; nothing is replaced.
        await update(p, sid, hot({"vm": server(metadata={"canopy:x": "1"})}))
        done = await settle(p, sid)
        assert (done.action, done.status) == ("UPDATE", "FAILED")
        assert "reserved for canopy" in (done.status_reason or "")
        [vm] = await live_servers(p)
        assert vm.id == old.id and vm.metadata_ == {"a": "1"}
    finally:
        await p.close()


async def test_bad_tags_are_refused_before_anything_is_made(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        for i, bad in enumerate((["a/b"], [1], ["x" * 61], [f"t{n}" for n in range(51)])):
            with pytest.raises(InvalidRequest, match="tag"):
                await create(p, f"bad{i}", hot({"vm": server(tags=bad)}))
        assert await live_servers(p) == []
    finally:
        await p.close()


def test_the_resource_type_shows_what_updates_in_place() -> None:
    schema = {k: v.update_allowed for k, v in resource_type("OS::Nova::Server").properties.items()}
    for name in ("name", "metadata", "tags", "user_data", "user_data_update_policy"):
        assert schema[name], name
    for name in ("flavor", "image", "key_name", "availability_zone", "user_data_format"):
        assert not schema[name], name
    policy = resource_type("OS::Nova::Server").properties["user_data_update_policy"]
    assert (policy.default, policy.allowed) == ("REPLACE", ("REPLACE", "IGNORE"))


def _ec2(**props: Any) -> dict[str, Any]:
    base = {"ImageId": "cirros", "InstanceType": "m1.small"}
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {"I": {"Type": "AWS::EC2::Instance", "Properties": {**base, **props}}},
    }


async def _ec2_updated(p: Plane, sid: str, **props: Any) -> Server:
    await update(p, sid, _ec2(**props))
    done = await settle(p, sid)
    assert (done.action, done.status) == ("UPDATE", "COMPLETE"), done.status_reason
    [vm] = await live_servers(p)
    return vm


async def test_ec2_instance_tags_change_in_place_as_server_metadata(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "ec2", _ec2(Tags=[{"Key": "role", "Value": "web"}]))
        assert (await settle(p, sid)).status == "COMPLETE"
        [old] = await live_servers(p)
        assert old.metadata_ == {"role": "web"}

        tags = [{"Key": "role", "Value": "db"}, {"Key": "n", "Value": 2}]
        vm = await _ec2_updated(p, sid, Tags=tags)
        assert vm.id == old.id and vm.metadata_ == {"role": "db", "n": "2"}
        assert (await resources(p, sid))["I"].server_id == old.id
        # The change went through the server service: announced like the API's.
        async with p.db.read() as s:
            sent = await s.execute(
                select(OutboxEvent.payload).where(
                    OutboxEvent.event_type == "compute.instance.update",
                    OutboxEvent.subject == f"server/{old.id}",
                )
            )
            assert [row["metadata"] for (row,) in sent] == [{"role": "db", "n": "2"}]

        vm = await _ec2_updated(p, sid)  # no Tags: no metadata, still in place
        assert vm.id == old.id and vm.metadata_ == {}

        # Another property still replaces the instance.
        vm = await _ec2_updated(p, sid, InstanceType="m1.large", Tags=tags)
        assert vm.id != old.id and vm.metadata_ == {"role": "db", "n": "2"}
    finally:
        await p.close()


async def test_refused_ec2_tags_fail_the_update_and_keep_the_instance(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "ec2bad", _ec2(Tags=[{"Key": "a", "Value": "1"}]))
        assert (await settle(p, sid)).status == "COMPLETE"
        [old] = await live_servers(p)
        await update(p, sid, _ec2(Tags=[{"Key": "canopy:x", "Value": "1"}]))
        done = await settle(p, sid)
        assert (done.action, done.status) == ("UPDATE", "FAILED")
        assert "reserved for canopy" in (done.status_reason or "")
        [vm] = await live_servers(p)
        assert vm.id == old.id and vm.metadata_ == {"a": "1"}
    finally:
        await p.close()


def test_the_ec2_instance_type_shows_tags_update_in_place() -> None:
    kind = resource_type("AWS::EC2::Instance")
    allowed = {k for k, v in kind.properties.items() if v.update_allowed}
    assert allowed == {"Tags"}
    assert kind.properties["Tags"].schema()["update_allowed"] is True
