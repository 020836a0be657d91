"""Nova os-keypairs: per-user keys, imported or generated, at every microversion."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import threading
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.services import keypairs
from canopy.services.quotas import update
from tests.api.conftest import Api, assert_fault
from tests.api.tokens import Caller, caller

URL = "/compute/v2.1/os-keypairs"


def mv(version: str) -> dict[str, str]:
    return {"OpenStack-API-Version": f"compute {version}"}


def ssh_public_key() -> str:
    key = ed25519.Ed25519PrivateKey.generate()
    blob = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return blob.decode() + " me@laptop"


def nova_fingerprint(public_key: str) -> str:
    raw = hashlib.md5(base64.b64decode(public_key.split()[1])).hexdigest()
    return ":".join(raw[i : i + 2] for i in range(0, len(raw), 2))


@pytest.fixture
async def alice(api: Api) -> Caller:
    return await caller(api.plane.db, api.plane.clock, project="team", user="alice")


@pytest.fixture
async def bob(api: Api) -> Caller:
    return await caller(api.plane.db, api.plane.clock, project="team", user="bob")


async def create(
    api: Api, who: Caller, body: dict[str, object], version: str = "2.1"
) -> httpx.Response:
    return await api.client.post(
        URL, json={"keypair": body}, headers={**who.headers, **mv(version)}
    )


async def test_import_then_show_list_delete_at_2_1(api: Api, alice: Caller) -> None:
    pub = ssh_public_key()
    r = await create(api, alice, {"name": "k2", "public_key": pub})
    assert r.status_code == 200, r.text  # 201 only from 2.2
    kp = r.json()["keypair"]
    assert kp == {
        "name": "k2",
        "public_key": pub,
        "fingerprint": nova_fingerprint(pub),
        "user_id": alice.user_id,
    }

    r = await api.client.get(f"{URL}/k2", headers=alice.headers)
    assert r.status_code == 200
    shown = r.json()["keypair"]
    assert set(shown) == {
        "name",
        "public_key",
        "fingerprint",
        "user_id",
        "created_at",
        "deleted",
        "deleted_at",
        "updated_at",
        "id",
    }
    assert shown["deleted"] is False and shown["deleted_at"] is None
    assert shown["updated_at"] is None and isinstance(shown["id"], int)

    r = await api.client.get(URL, headers=alice.headers)
    assert r.json() == {
        "keypairs": [
            {"keypair": {"name": "k2", "public_key": pub, "fingerprint": kp["fingerprint"]}}
        ]
    }

    r = await api.client.delete(f"{URL}/k2", headers=alice.headers)
    assert r.status_code == 202 and r.content == b""
    r = await api.client.get(f"{URL}/k2", headers=alice.headers)
    assert "k2" in assert_fault(r, 404, "itemNotFound")


async def test_generated_key_returns_the_private_key_once(api: Api, alice: Caller) -> None:
    r = await create(api, alice, {"name": "k1"}, "2.2")
    assert r.status_code == 201, r.text
    kp = r.json()["keypair"]
    assert kp["type"] == "ssh" and kp["user_id"] == alice.user_id
    assert kp["public_key"].startswith("ssh-rsa ")
    assert kp["fingerprint"] == nova_fingerprint(kp["public_key"])
    private = serialization.load_pem_private_key(kp["private_key"].encode(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    derived = private.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    assert kp["public_key"].startswith(derived.decode())

    shown = (await api.client.get(f"{URL}/k1", headers={**alice.headers, **mv("2.2")})).json()
    assert "private_key" not in shown["keypair"] and shown["keypair"]["type"] == "ssh"
    listed = (await api.client.get(URL, headers={**alice.headers, **mv("2.2")})).json()
    assert "private_key" not in listed["keypairs"][0]["keypair"]

    r = await api.client.delete(f"{URL}/k1", headers={**alice.headers, **mv("2.2")})
    assert r.status_code == 204 and r.content == b""


async def test_x509_keypairs(api: Api, alice: Caller) -> None:
    r = await create(api, alice, {"name": "win", "type": "x509"}, "2.2")
    assert r.status_code == 201, r.text
    kp = r.json()["keypair"]
    cert = x509.load_pem_x509_certificate(kp["public_key"].encode())
    sha1 = cert.fingerprint(hashes.SHA1()).hex()
    assert kp["fingerprint"] == ":".join(sha1[i : i + 2] for i in range(0, 40, 2))
    assert kp["type"] == "x509" and "PRIVATE KEY" in kp["private_key"]

    r = await create(
        api, alice, {"name": "win2", "type": "x509", "public_key": kp["public_key"]}, "2.2"
    )
    assert r.status_code == 201 and r.json()["keypair"]["fingerprint"] == kp["fingerprint"]
    r = await create(api, alice, {"name": "bad", "type": "x509", "public_key": "nope"}, "2.2")
    assert "X509" in assert_fault(r, 400, "badRequest")
    # `type` is unknown before 2.2
    r = await create(api, alice, {"name": "old", "type": "ssh"}, "2.1")
    assert "type" in assert_fault(r, 400, "badRequest")


async def test_names_and_bodies_nova_rejects(api: Api, alice: Caller) -> None:
    for body in (
        {"name": ""},
        {"name": "a/b"},
        {"name": "k@home"},  # '@' and '.' only from 2.92
        {"name": " padded "},
        {"name": "x" * 256},
        {"name": 7},
        {"public_key": ssh_public_key()},
        {"name": "ok", "public_key": "not a key"},
        {"name": "ok", "public_key": 42},
        {"name": "ok", "colour": "blue"},
        {"name": "ok", "type": "gpg"},
    ):
        r = await create(api, alice, body, "2.2")
        assert_fault(r, 400, "badRequest")
    r = await api.client.post(URL, json={"keypair": "k"}, headers=alice.headers)
    assert_fault(r, 400, "badRequest")
    r = await api.client.post(URL, json={"keypair": {"name": "k"}, "x": 1}, headers=alice.headers)
    assert_fault(r, 400, "badRequest")
    r = await api.client.post(URL, json={}, headers=alice.headers)
    assert_fault(r, 400, "badRequest")
    names = (await api.client.get(URL, headers=alice.headers)).json()["keypairs"]
    assert names == []
    r = await create(api, alice, {"name": "with space_and-dash"}, "2.2")
    assert r.status_code == 201


async def test_duplicate_name_is_a_conflict_per_user(api: Api, alice: Caller, bob: Caller) -> None:
    assert (await create(api, alice, {"name": "k"})).status_code == 200
    r = await create(api, alice, {"name": "k"})
    assert "already exists" in assert_fault(r, 409, "conflictingRequest")
    # Keypairs belong to users: bob may have his own "k", and cannot see alice's.
    assert (await create(api, bob, {"name": "k"})).status_code == 200
    alices = (await api.client.get(f"{URL}/k", headers=alice.headers)).json()["keypair"]
    bobs = (await api.client.get(f"{URL}/k", headers=bob.headers)).json()["keypair"]
    assert alices["user_id"] == alice.user_id and bobs["user_id"] == bob.user_id
    assert alices["fingerprint"] != bobs["fingerprint"]
    r = await api.client.delete(f"{URL}/k", headers=bob.headers)
    assert r.status_code == 202
    assert (await api.client.get(f"{URL}/k", headers=alice.headers)).status_code == 200
    r = await api.client.delete(f"{URL}/k", headers=bob.headers)
    assert_fault(r, 404, "itemNotFound")


async def test_key_pairs_quota(api: Api, alice: Caller) -> None:
    async with api.plane.db.session() as s:
        await update(s, api.plane.settings, alice.project_id, "", {"key_pairs": 2})
    for name in ("a", "b"):
        assert (await create(api, alice, {"name": name})).status_code == 200
    r = await create(api, alice, {"name": "c"})
    assert "too many key pairs" in assert_fault(r, 403, "forbidden")


async def test_admin_acts_for_another_user_from_2_10(api: Api, alice: Caller, bob: Caller) -> None:
    pub = ssh_public_key()
    body = {"name": "for-alice", "public_key": pub, "user_id": alice.user_id}
    r = await api.client.post(URL, json={"keypair": body}, headers=mv("2.10"))
    assert r.status_code == 201, r.text
    assert r.json()["keypair"]["user_id"] == alice.user_id
    mine = (await api.client.get(URL, headers=alice.headers)).json()["keypairs"]
    assert [k["keypair"]["name"] for k in mine] == ["for-alice"]
    # user_id is not part of the 2.9 body
    r = await api.client.post(URL, json={"keypair": body}, headers=mv("2.9"))
    assert_fault(r, 400, "badRequest")

    q = f"?user_id={alice.user_id}"
    listed = (await api.client.get(URL + q, headers=mv("2.10"))).json()["keypairs"]
    assert [k["keypair"]["name"] for k in listed] == ["for-alice"]
    # Before 2.10 the parameter is ignored: the admin sees their own (none).
    assert (await api.client.get(URL + q, headers=mv("2.9"))).json()["keypairs"] == []
    r = await api.client.get(f"{URL}/for-alice{q}", headers=mv("2.10"))
    assert r.status_code == 200
    # A member may not act for someone else.
    r = await api.client.get(
        URL + f"?user_id={bob.user_id}", headers={**alice.headers, **mv("2.10")}
    )
    assert "os-keypairs:index" in assert_fault(r, 403, "forbidden")
    r = await api.client.post(
        URL,
        json={"keypair": {"name": "x", "user_id": bob.user_id}},
        headers={**alice.headers, **mv("2.10")},
    )
    assert_fault(r, 403, "forbidden")
    r = await api.client.delete(f"{URL}/for-alice{q}", headers=mv("2.10"))
    assert r.status_code == 204
    assert (await api.client.get(URL, headers=alice.headers)).json()["keypairs"] == []


async def test_paging_by_name_from_2_35(api: Api, alice: Caller) -> None:
    pub = ssh_public_key()
    for name in ("d", "b", "e", "a", "c"):
        r = await create(api, alice, {"name": name, "public_key": pub}, "2.35")
        assert r.status_code == 201
    h = {**alice.headers, **mv("2.35")}
    seen: list[str] = []
    url: str | None = f"{URL}?limit=2"
    while url:
        body = (await api.client.get(url, headers=h)).json()
        seen += [k["keypair"]["name"] for k in body["keypairs"]]
        links = body.get("keypairs_links", [])
        url = links[0]["href"] if links else None
        if url:
            assert links[0]["rel"] == "next" and url.startswith("http://canopy.test/compute/")
    assert seen == ["a", "b", "c", "d", "e"]
    body = (await api.client.get(f"{URL}?marker=c", headers=h)).json()
    assert [k["keypair"]["name"] for k in body["keypairs"]] == ["d", "e"]
    assert "keypairs_links" not in body
    r = await api.client.get(f"{URL}?marker=zzz", headers=h)
    assert "zzz" in assert_fault(r, 400, "badRequest")
    r = await api.client.get(f"{URL}?limit=-1", headers=h)
    assert_fault(r, 400, "badRequest")
    # Before 2.35 limit and marker are ignored.
    old = (await api.client.get(f"{URL}?limit=1", headers={**alice.headers, **mv("2.34")})).json()
    assert len(old["keypairs"]) == 5 and "type" in old["keypairs"][0]["keypair"]


async def test_unknown_query_parameters_from_2_75(api: Api, alice: Caller) -> None:
    h74 = {**alice.headers, **mv("2.74")}
    h75 = {**alice.headers, **mv("2.75")}
    assert (await api.client.get(f"{URL}?colour=red", headers=h74)).status_code == 200
    r = await api.client.get(f"{URL}?colour=red", headers=h75)
    assert "colour" in assert_fault(r, 400, "badRequest")
    r = await api.client.get(f"{URL}/k?colour=red", headers=h75)
    assert_fault(r, 400, "badRequest")


async def test_tokens_and_roles(api: Api) -> None:
    r = await api.client.get(URL, headers={"X-Auth-Token": "bogus"})
    assert_fault(r, 401, "unauthorized")
    reader = await caller(api.plane.db, api.plane.clock, project="team", user="rita", role="reader")
    r = await create(api, reader, {"name": "k"})
    assert_fault(r, 403, "forbidden")
    assert (await api.client.get(URL, headers=reader.headers)).status_code == 200


async def test_responses_echo_the_microversion(api: Api, alice: Caller) -> None:
    r = await api.client.get(URL, headers={**alice.headers, **mv("2.50")})
    assert r.headers["openstack-api-version"] == "compute 2.50"
    assert r.headers["x-openstack-nova-api-version"] == "2.50"


async def test_nul_characters_are_refused_not_crashed(api: Api, alice: Caller) -> None:
    # PostgreSQL cannot store NUL: each such value must be a clean 4xx on both databases.
    h = {**alice.headers, **mv("2.35")}
    for path in (f"{URL}/a%00b", f"{URL}?marker=a%00b", f"{URL}?limit=1&marker=a%00b"):
        r = await api.client.get(path, headers=h)
        assert 400 <= r.status_code < 500, (path, r.text)
    assert (await api.client.delete(f"{URL}/a%00b", headers=h)).status_code == 404
    assert (await api.client.get(f"{URL}?user_id=a%00b", headers=mv("2.10"))).status_code == 200
    pub = ssh_public_key()
    r = await create(api, alice, {"name": "k", "public_key": pub + "\u0000"}, "2.2")
    assert_fault(r, 400, "badRequest")
    r = await api.client.post(
        URL, json={"keypair": {"name": "k", "user_id": "a\u0000b"}}, headers=mv("2.10")
    )
    assert_fault(r, 400, "badRequest")


@pytest.mark.parametrize("key_type", ["ssh", "x509"])
async def test_key_generation_runs_in_a_thread_with_no_write_transaction_open(
    api: Api, alice: Caller, monkeypatch: pytest.MonkeyPatch, key_type: str
) -> None:
    db = api.plane.db
    open_writes = 0
    session = db.session

    @contextlib.asynccontextmanager
    async def counted() -> AsyncIterator[AsyncSession]:
        nonlocal open_writes
        async with session() as s:
            open_writes += 1
            try:
                yield s
            finally:
                open_writes -= 1

    seen: list[tuple[bool, int]] = []

    def watched(generate: Callable[..., tuple[str, str]]) -> Callable[..., tuple[str, str]]:
        def run(*args: object) -> tuple[str, str]:
            seen.append((threading.current_thread() is threading.main_thread(), open_writes))
            return generate(*args)

        return run

    monkeypatch.setattr(db, "session", counted)
    monkeypatch.setattr(keypairs, "generate_ssh", watched(keypairs.generate_ssh))
    monkeypatch.setattr(keypairs, "generate_x509", watched(keypairs.generate_x509))
    r = await create(api, alice, {"name": "gen", "type": key_type}, "2.2")
    assert r.status_code == 201, r.text
    assert "private_key" in r.json()["keypair"]
    assert seen == [(False, 0)]  # off the event loop's thread, no write transaction open


async def test_a_full_quota_is_answered_before_any_key_is_generated(
    api: Api, alice: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with api.plane.db.session() as s:
        await update(s, api.plane.settings, alice.project_id, "", {"key_pairs": 0})

    def never() -> tuple[str, str]:
        raise AssertionError("a key was generated for a request that cannot succeed")

    monkeypatch.setattr(keypairs, "generate_ssh", never)
    r = await create(api, alice, {"name": "gen"}, "2.2")
    assert_fault(r, 403, "forbidden")
