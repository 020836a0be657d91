"""OS::Nova::KeyPair, OS::Nova::ServerGroup and AWS::EC2::Instance through the engine: the
keypair is the user's, a group places its servers by its policy, an instance is a server."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from canopy.domain.errors import InvalidRequest
from canopy.orchestration.outputs import bound_of, outputs
from canopy.orchestration.service import StackService
from canopy.services import keypairs
from canopy.services.keypairs import generate_ssh
from canopy.store.models import Keypair, ServerGroup
from tests.controllers.harness import Plane, make_plane

from .helpers import CLOUDS, create, hot, live_servers, resources, server, settle


async def _keys(p: Plane) -> dict[str, Keypair]:
    async with p.db.read() as s:
        return {k.name: k for k in (await s.execute(select(Keypair))).scalars()}


async def _delete(p: Plane, sid: str) -> None:
    async with p.db.session() as s:
        svc = StackService(p.settings, p.clock)
        await svc.delete(s, await svc.find(s, p.ctx.project_id, sid, lock=True))


async def test_a_generated_keypair_is_the_users_and_a_server_boots_with_it(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        t = hot(
            {
                "key": {
                    "type": "OS::Nova::KeyPair",
                    "properties": {"name": "stack-key", "save_private_key": True},
                },
                "vm": server(key_name={"get_resource": "key"}),
            },
            outputs={"private": {"value": {"get_attr": ["key", "private_key"]}}},
        )
        sid = await create(p, "keyed", t)
        done = await settle(p, sid)
        assert (done.action, done.status) == ("CREATE", "COMPLETE"), done.status_reason
        rows = await resources(p, sid)
        assert rows["key"].physical_resource_id == "stack-key"
        found = (await _keys(p))["stack-key"]
        assert found.user_id == p.ctx.user_id and found.project_id == p.ctx.project_id
        assert rows["key"].attributes["public_key"] == found.public_key
        assert "PRIVATE KEY" in rows["key"].attributes["private_key"]
        [vm] = await live_servers(p)
        assert vm.key_name == "stack-key"

        await _delete(p, sid)
        gone = await settle(p, sid)
        assert (gone.action, gone.status) == ("DELETE", "COMPLETE"), gone.status_reason
        assert "stack-key" not in await _keys(p)
    finally:
        await p.close()


async def test_an_imported_keypair_keeps_no_private_key(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        _, public = generate_ssh()
        t = hot(
            {
                "key": {
                    "type": "OS::Nova::KeyPair",
                    "properties": {"name": "mine", "public_key": public, "save_private_key": True},
                }
            }
        )
        sid = await create(p, "imported", t)
        assert (await settle(p, sid)).status == "COMPLETE"
        row = (await resources(p, sid))["key"]
        assert row.attributes == {"public_key": public, "private_key": ""}
        assert (await _keys(p))["mine"].fingerprint == keypairs.ssh_fingerprint(public)
    finally:
        await p.close()


async def test_a_keypair_name_taken_fails_the_resource_and_keeps_the_users_key(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        _, public = generate_ssh()
        async with p.db.session() as s:
            await keypairs.create(
                s,
                p.settings,
                project_id=p.ctx.project_id,
                user_id=p.ctx.user_id,
                name="taken",
                key_type="ssh",
                public_key=public,
                now=p.clock.now(),
            )
        t = hot({"key": {"type": "OS::Nova::KeyPair", "properties": {"name": "taken"}}})
        sid = await create(p, "clash", t)
        done = await settle(p, sid)
        assert done.status == "FAILED"
        assert "already exists" in done.status_reason
        await _delete(p, sid)
        assert (await settle(p, sid)).status == "COMPLETE"
        assert (await _keys(p))["taken"].public_key == public  # not the stack's to delete
    finally:
        await p.close()


@pytest.mark.parametrize(
    ("props", "words"),
    [
        ({"name": "bad/name"}, "does not match"),
        ({"name": "k", "public_key": "ssh-rsa nonsense"}, "Keypair data is invalid"),
        ({"name": "k", "type": "pgp"}, "allowed values"),
        ({"name": "k", "user": "someone"}, "user"),
        ({}, "Property name not assigned"),
    ],
)
async def test_bad_keypair_properties_are_refused_before_anything_exists(
    db_url: str, tmp_path: Path, props: dict[str, object], words: str
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        t = hot({"key": {"type": "OS::Nova::KeyPair", "properties": props}})
        with pytest.raises(InvalidRequest, match=words):
            await create(p, "bad", t)
    finally:
        await p.close()


async def _group_clouds(p: Plane, policy: str) -> list[str]:
    t = hot(
        {
            "grp": {"type": "OS::Nova::ServerGroup", "properties": {"policies": [policy]}},
            "a": server(scheduler_hints={"group": {"get_resource": "grp"}}),
            "b": server(scheduler_hints={"group": {"get_resource": "grp"}}),
        }
    )
    sid = await create(p, f"grouped-{policy}", t)
    done = await settle(p, sid)
    assert done.status == "COMPLETE", done.status_reason
    rows = await resources(p, sid)
    async with p.db.read() as s:
        group = await s.get(ServerGroup, rows["grp"].physical_resource_id)
        assert group is not None and group.policy == policy
    servers = await live_servers(p)
    assert {v.group_id for v in servers} == {group.id}
    return sorted(str(v.cloud) for v in servers)


@pytest.mark.parametrize("policy", ["anti-affinity", "affinity"])
async def test_a_server_group_places_its_servers_by_policy(
    db_url: str, tmp_path: Path, policy: str
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        clouds = await _group_clouds(p, policy)
        if policy == "anti-affinity":
            # Canopy's hosts are clouds: anti-affinity spreads two servers over both.
            assert clouds == ["private", "public"]
        else:
            assert len(clouds) == 2 and len(set(clouds)) == 1
    finally:
        await p.close()


async def test_a_server_group_is_deleted_after_its_servers(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        t = hot(
            {
                "grp": {"type": "OS::Nova::ServerGroup", "properties": {"policy": "affinity"}},
                "a": server(scheduler_hints={"group": {"get_resource": "grp"}}),
            }
        )
        sid = await create(p, "g", t)
        assert (await settle(p, sid)).status == "COMPLETE"
        await _delete(p, sid)
        gone = await settle(p, sid)
        assert (gone.action, gone.status) == ("DELETE", "COMPLETE"), gone.status_reason
        async with p.db.read() as s:
            assert (await s.execute(select(ServerGroup))).first() is None
        assert await live_servers(p) == []
    finally:
        await p.close()


@pytest.mark.parametrize(
    ("props", "words"),
    [
        ({"policies": ["affinity", "anti-affinity"]}, "exactly one"),
        ({"policies": ["sideways"]}, "exactly one"),
        ({"policy": "sideways"}, "allowed values"),
        ({"rules": {"max_server_per_host": 3}}, "not supported"),
        ({"policies": ["affinity"], "rules": {"max_server_per_host": 1}}, "anti-affinity"),
        ({"name": " padded "}, "name"),
    ],
)
async def test_bad_server_group_properties_are_refused(
    db_url: str, tmp_path: Path, props: dict[str, object], words: str
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        t = hot({"grp": {"type": "OS::Nova::ServerGroup", "properties": props}})
        with pytest.raises(InvalidRequest, match=words):
            await create(p, "bad", t)
    finally:
        await p.close()


CFN = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Parameters": {"Zone": {"Type": "String", "Default": "public"}},
    "Resources": {
        "Web": {
            "Type": "AWS::EC2::Instance",
            "Properties": {
                "ImageId": "cirros",
                "InstanceType": "m1.small",
                "AvailabilityZone": {"Ref": "Zone"},
                "UserData": {"Fn::Base64": "#!/bin/sh\necho hi\n"},
                "Tags": [{"Key": "role", "Value": "web"}],
            },
        }
    },
    "Outputs": {
        "Ip": {"Value": {"Fn::GetAtt": ["Web", "PublicIp"]}},
        "Az": {"Value": {"Fn::GetAtt": ["Web", "AvailabilityZone"]}},
    },
}


async def test_an_ec2_instance_is_a_canopy_server_with_aws_attributes(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "cfn", CFN)
        done = await settle(p, sid)
        assert done.status == "COMPLETE", done.status_reason
        [vm] = await live_servers(p)
        assert vm.cloud == "public"
        assert vm.metadata_ == {"role": "web"}
        row = (await resources(p, sid))["Web"]
        assert row.physical_resource_id == vm.id
        assert row.attributes["AvailabilityZone"] == "public"
        outs = {o["output_key"]: o["output_value"] for o in outputs(bound_of(done, "r"), [row])}
        assert outs["Az"] == "public"
        assert outs["Ip"] == row.attributes["PrivateIp"] and outs["Ip"]
        await _delete(p, sid)
        assert (await settle(p, sid)).status == "COMPLETE"
        assert await live_servers(p) == []
    finally:
        await p.close()


@pytest.mark.parametrize(
    ("props", "words"),
    [
        ({"ImageId": "cirros"}, "InstanceType not assigned"),
        ({"ImageId": "cirros", "InstanceType": "m9.huge"}, "No Flavor matching m9.huge"),
        ({"ImageId": "nope", "InstanceType": "m1.small"}, "No Image matching nope"),
        ({"ImageId": "cirros", "InstanceType": "m1.small", "Tags": ["x"]}, "Key and Value"),
        ({"ImageId": "cirros", "InstanceType": "m1.small", "KeyName": "zz"}, "zz"),
    ],
)
async def test_bad_ec2_instance_properties_are_refused(
    db_url: str, tmp_path: Path, props: dict[str, object], words: str
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        t = {
            "AWSTemplateFormatVersion": "2010-09-09",
            "Resources": {"I": {"Type": "AWS::EC2::Instance", "Properties": props}},
        }
        with pytest.raises(InvalidRequest, match=words):
            await create(p, "bad", t)
        assert await live_servers(p) == []
    finally:
        await p.close()
