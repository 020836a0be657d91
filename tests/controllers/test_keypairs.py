"""Keypairs reach a cloud the first time a server there uses them, once per cloud."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from canopy.domain.errors import AlreadyExists, CloudError, TransientError
from canopy.domain.specs import Resources, ServerSpec
from canopy.domain.states import Ability
from canopy.providers.base import Abilities
from canopy.services import keypairs
from canopy.services.keypairs import remote_key_name
from canopy.store.models import Keypair, KeypairPush

from .harness import Plane, make_plane

CLOUDS = """
[[clouds]]
name = "private"
tier = 0
[clouds.sim]
hosts = 2
host_vcpus = 16
host_ram_mb = 65536
boot_seconds = 2
api_latency_ms = 5

[[clouds]]
name = "public"
tier = 1
[clouds.sim]
hosts = 10
host_vcpus = 64
host_ram_mb = 262144
boot_seconds = 2
api_latency_ms = 5
price_per_vcpu_hour = 0.05
"""


@pytest.fixture
async def plane(db_url: str, tmp_path: Path) -> Any:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        yield p
    finally:
        await p.close()


async def _keypair(p: Plane, name: str = "k1") -> Keypair:
    private, public = await keypairs.generate("ssh", p.ctx.user_id, p.clock.now())
    async with p.db.session() as s:
        new = await keypairs.create(
            s,
            p.settings,
            project_id=p.ctx.project_id,
            user_id=p.ctx.user_id,
            name=name,
            key_type="ssh",
            public_key=public,
            private_key=private,
            now=p.clock.now(),
        )
        return new.keypair


async def _active(p: Plane, ids: list[str]) -> None:
    async def done() -> bool:
        servers = {s.id: s for s in await p.servers()}
        return all(servers[i].status == "ACTIVE" for i in ids)

    await p.run_until(done)


async def _pushes(p: Plane) -> list[tuple[int, str, str]]:
    async with p.db.read() as s:
        rows = await s.execute(select(KeypairPush).order_by(KeypairPush.cloud))
        return [(r.keypair_id, r.cloud, r.remote_name) for r in rows.scalars()]


def _count_imports(p: Plane, cloud: str) -> list[str]:
    """Record every import_keypair call the cloud's driver gets."""
    driver = p.sim(cloud)
    calls: list[str] = []
    real = driver.import_keypair

    async def counting(name: str, public_key: str) -> None:
        calls.append(name)
        await real(name, public_key)

    driver.import_keypair = counting  # type: ignore[method-assign]
    return calls


async def test_two_servers_on_one_cloud_push_the_key_once(plane: Plane) -> None:
    p = plane
    kp = await _keypair(p)
    imports = _count_imports(p, "private")
    ids = await p.create(2, key_name="k1", availability_zone="private")
    await _active(p, ids)

    remote = remote_key_name(p.ctx.user_id, "k1", kp.fingerprint)
    assert remote == f"canopy-{p.ctx.user_id}-k1-{kp.fingerprint.replace(':', '')[:16]}"
    assert imports == [remote]
    assert await _pushes(p) == [(kp.id, "private", remote)]
    assert await p.sim("private").keypairs() == {remote: kp.public_key}
    for server in await p.servers():
        assert server.cloud == "private"
        assert server.remote_id is not None
        assert await p.sim("private").key_name_of(server.remote_id) == remote
        assert server.key_name == "k1"  # the user still sees their own name
    assert await p.sim("public").keypairs() == {}


async def test_a_later_server_reuses_the_push_and_another_cloud_gets_its_own(
    plane: Plane,
) -> None:
    p = plane
    kp = await _keypair(p)
    private_imports = _count_imports(p, "private")
    public_imports = _count_imports(p, "public")
    first = await p.create(1, name="a", key_name="k1", availability_zone="private")
    await _active(p, first)
    second = await p.create(1, name="b", key_name="k1", availability_zone="private")
    third = await p.create(1, name="c", key_name="k1", availability_zone="public")
    await _active(p, second + third)

    remote = remote_key_name(p.ctx.user_id, "k1", kp.fingerprint)
    assert len(private_imports) == 1 and len(public_imports) == 1
    assert await _pushes(p) == [(kp.id, "private", remote), (kp.id, "public", remote)]
    servers = {s.name: s for s in await p.servers()}
    assert servers["c"].remote_id is not None
    assert await p.sim("public").key_name_of(servers["c"].remote_id) == remote


async def test_servers_without_a_key_push_nothing(plane: Plane) -> None:
    p = plane
    await _keypair(p)
    ids = await p.create(1, availability_zone="private")
    await _active(p, ids)
    assert await _pushes(p) == []
    assert await p.sim("private").keypairs() == {}
    [server] = await p.servers()
    assert server.remote_id is not None
    assert await p.sim("private").key_name_of(server.remote_id) is None


async def test_a_driver_without_the_ability_gets_the_public_key(plane: Plane) -> None:
    p = plane
    kp = await _keypair(p)
    driver = p.sim("private")
    driver.abilities = Abilities({Ability.KEYPAIRS: "this cloud cannot import keys"})
    specs: list[ServerSpec] = []
    real_create = driver.create

    async def spying(spec: ServerSpec) -> Any:
        specs.append(spec)
        return await real_create(spec)

    driver.create = spying  # type: ignore[method-assign]
    ids = await p.create(1, key_name="k1", availability_zone="private")
    await _active(p, ids)

    assert specs and all(s.public_key == kp.public_key and s.key_name is None for s in specs)
    assert await _pushes(p) == []
    assert await driver.keypairs() == {}


async def test_a_failed_push_is_retried_and_the_server_still_boots(plane: Plane) -> None:
    p = plane
    kp = await _keypair(p)
    driver = p.sim("private")
    real = driver.import_keypair
    calls: list[str] = []

    async def flaky(name: str, public_key: str) -> None:
        calls.append(name)
        if len(calls) == 1:
            raise TransientError("503 from the keypair API (test)", cloud="private")
        await real(name, public_key)

    driver.import_keypair = flaky  # type: ignore[method-assign]
    ids = await p.create(1, key_name="k1", availability_zone="private")
    await _active(p, ids)
    assert len(calls) == 2
    remote = remote_key_name(p.ctx.user_id, "k1", kp.fingerprint)
    assert await _pushes(p) == [(kp.id, "private", remote)]
    [server] = await p.servers()
    assert server.cloud == "private" and server.attempts == 1


async def test_a_keypair_deleted_before_the_boot_means_no_key(plane: Plane) -> None:
    p = plane
    await _keypair(p)
    ids = await p.create(1, key_name="k1", availability_zone="private")
    async with p.db.session() as s:
        await keypairs.delete(s, p.ctx.user_id, "k1")
    await _active(p, ids)
    [server] = await p.servers()
    assert server.remote_id is not None
    assert await p.sim("private").key_name_of(server.remote_id) is None
    assert await _pushes(p) == []


async def test_deleting_a_keypair_forgets_its_pushes(plane: Plane) -> None:
    p = plane
    await _keypair(p)
    ids = await p.create(1, key_name="k1", availability_zone="private")
    await _active(p, ids)
    assert len(await _pushes(p)) == 1
    async with p.db.session() as s:
        await keypairs.delete(s, p.ctx.user_id, "k1")
    assert await _pushes(p) == []


async def test_a_rotated_key_boots_new_servers_with_the_new_key(plane: Plane) -> None:
    # Nova keypairs are immutable: a key is rotated by deleting it and making it again
    # under the same name. The cloud will not overwrite a name (Nova 409, EC2 Duplicate).
    p = plane
    old = await _keypair(p)
    first = await p.create(1, name="before", key_name="k1", availability_zone="private")
    await _active(p, first)
    async with p.db.session() as s:
        await keypairs.delete(s, p.ctx.user_id, "k1")
    new = await _keypair(p)
    assert new.public_key != old.public_key
    imports = _count_imports(p, "private")
    second = await p.create(1, name="after", key_name="k1", availability_zone="private")
    await _active(p, second)

    sim = p.sim("private")
    servers = {s.name: s for s in await p.servers()}
    after, before = servers["after"].remote_id, servers["before"].remote_id
    assert after is not None and before is not None
    on_cloud = await sim.keypairs()
    assert on_cloud[await sim.key_name_of(after) or ""] == new.public_key
    assert on_cloud[await sim.key_name_of(before) or ""] == old.public_key

    old_remote = remote_key_name(p.ctx.user_id, "k1", old.fingerprint)
    new_remote = remote_key_name(p.ctx.user_id, "k1", new.fingerprint)
    assert imports == [new_remote]
    # The old public key stays on the cloud (it is public; canopy does not delete it).
    assert on_cloud == {old_remote: old.public_key, new_remote: new.public_key}
    assert await sim.key_name_of(after) == new_remote
    assert await sim.key_name_of(before) == old_remote
    assert await _pushes(p) == [(new.id, "private", new_remote)]


async def test_a_key_the_cloud_already_has_counts_as_pushed(plane: Plane) -> None:
    # A worker imported the key, then died before recording it: the import is refused
    # the second time, and the name (with the key's fingerprint) says it is this key.
    p = plane
    kp = await _keypair(p)
    remote = remote_key_name(p.ctx.user_id, "k1", kp.fingerprint)
    sim = p.sim("private")
    await sim.import_keypair(remote, kp.public_key)
    imports = _count_imports(p, "private")
    ids = await p.create(1, key_name="k1", availability_zone="private")
    await _active(p, ids)
    assert imports == [remote]  # tried, refused as a duplicate, and taken as done
    assert await _pushes(p) == [(kp.id, "private", remote)]
    [server] = await p.servers()
    assert server.attempts == 1 and server.remote_id is not None
    assert await sim.key_name_of(server.remote_id) == remote


async def test_a_push_recorded_under_a_name_without_the_fingerprint_is_made_again(
    plane: Plane,
) -> None:
    # Pushes recorded before remote names carried the key's fingerprint.
    p = plane
    kp = await _keypair(p)
    legacy = f"canopy-{p.ctx.user_id}-k1"
    sim = p.sim("private")
    await sim.import_keypair(legacy, kp.public_key)
    async with p.db.session() as s:
        s.add(
            KeypairPush(
                keypair_id=kp.id, cloud="private", remote_name=legacy, pushed_at=p.clock.now()
            )
        )
    ids = await p.create(1, key_name="k1", availability_zone="private")
    await _active(p, ids)
    remote = remote_key_name(p.ctx.user_id, "k1", kp.fingerprint)
    assert await _pushes(p) == [(kp.id, "private", remote)]
    assert await sim.keypairs() == {legacy: kp.public_key, remote: kp.public_key}
    [server] = await p.servers()
    assert server.remote_id is not None
    assert await sim.key_name_of(server.remote_id) == remote


# The sim's side of it ---------------------------------------------------------------------


async def test_sim_refuses_a_keypair_name_it_already_has(plane: Plane) -> None:
    # As Nova (409) and EC2 (InvalidKeyPair.Duplicate): never overwritten, even by itself.
    sim = plane.sim("private")
    await sim.import_keypair("canopy-u-k", "ssh-ed25519 AAAA one")
    with pytest.raises(AlreadyExists, match="Key pair 'canopy-u-k' already exists"):
        await sim.import_keypair("canopy-u-k", "ssh-ed25519 AAAA one")
    with pytest.raises(AlreadyExists):
        await sim.import_keypair("canopy-u-k", "ssh-ed25519 AAAA two")
    assert await sim.keypairs() == {"canopy-u-k": "ssh-ed25519 AAAA one"}


async def test_sim_refuses_a_server_with_an_unknown_key(plane: Plane) -> None:
    sim = plane.sim("private")
    spec = ServerSpec(
        canopy_id="c0ffee00-0000-0000-0000-000000000001",
        name="vm",
        flavor_name="m1.small",
        resources=Resources(1, 2048, 20),
        remote_flavor="m1.small",
        remote_image="cirros",
        key_name="nobody-imported-this",
    )
    with pytest.raises(CloudError, match="invalid key_name"):
        await sim.create(spec)
    await sim.import_keypair("nobody-imported-this", "ssh-ed25519 AAAA k")
    remote = await sim.create(spec)
    assert await sim.key_name_of(remote.remote_id) == "nobody-imported-this"
    again = await sim.create(dataclasses.replace(spec, key_name="nobody-imported-this"))
    assert again.remote_id == remote.remote_id  # still idempotent on the canopy id


def test_sim_state_files_from_before_keypairs_are_upgraded(tmp_path: Path) -> None:
    import sqlite3

    from canopy.config import SimSettings
    from canopy.providers.sim import keypairs as sim_keypairs
    from canopy.providers.sim.state import SimStore

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE servers (seq INTEGER PRIMARY KEY AUTOINCREMENT, remote_id TEXT NOT NULL"
        " UNIQUE, canopy_id TEXT, name TEXT NOT NULL, host TEXT NOT NULL, flavor TEXT,"
        " vcpus INTEGER NOT NULL, ram_mb INTEGER NOT NULL, disk_gb INTEGER NOT NULL,"
        " image TEXT NOT NULL, created_at INTEGER NOT NULL, ready_at INTEGER NOT NULL,"
        " failed INTEGER NOT NULL DEFAULT 0, power TEXT NOT NULL DEFAULT 'on', transition TEXT,"
        " transition_until INTEGER, updated_at INTEGER NOT NULL, deleted_at INTEGER,"
        " client_token TEXT)"
    )
    conn.execute(
        "INSERT INTO servers (remote_id, canopy_id, name, host, vcpus, ram_mb, disk_gb, image,"
        " created_at, ready_at, updated_at) VALUES ('r1', 'c1', 'old', 'h1', 1, 512, 1, 'img',"
        " 0, 0, 0)"
    )
    conn.commit()
    conn.close()
    store = SimStore(path, SimSettings(hosts=1), "old")
    try:
        with store.file.borrowed() as c:
            row = SimStore.get(c, "r1")
            assert row is not None and row.name == "old" and row.key_name is None
            assert sim_keypairs.every(c) == {}
    finally:
        store.close()
