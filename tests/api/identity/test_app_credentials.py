"""Application credentials: a user's own, created with a project-scoped token, used to log
in scoped to that project with the credential's roles; and what an attacker gets."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from canopy.services.identity import ROLE_IDS

from .conftest import V3, Keystone, assert_keystone_fault

TOKENS = f"{V3}/auth/tokens"


def _creds(user_id: str) -> str:
    return f"{V3}/users/{user_id}/application_credentials"


async def _create(ks: Keystone, token: str, user_id: str, **fields: Any) -> httpx.Response:
    body = {"application_credential": {"name": "ci", **fields}}
    return await ks.anon.post(_creds(user_id), json=body, headers=ks.as_(token))


async def _login(ks: Keystone, ref: dict[str, Any], **extra: Any) -> httpx.Response:
    auth = {
        "identity": {"methods": ["application_credential"], "application_credential": ref},
        **extra,
    }
    return await ks.anon.post(TOKENS, json={"auth": auth})


async def _project_id(ks: Keystone, name: str) -> str:
    r = await ks.client.get(f"{V3}/projects", params={"name": name})
    return str(r.json()["projects"][0]["id"])


async def test_create_shows_the_secret_once_and_logs_in_scoped_to_its_project(
    ks: Keystone,
) -> None:
    dave = await ks.user("dave", "pw", project="p1")
    await ks.user("dave", "pw", project="p2")  # a second project: not the credential's
    r = await _create(ks, dave.token, dave.user_id, description="for CI")
    assert r.status_code == 201, r.text
    cred = r.json()["application_credential"]
    secret = cred["secret"]
    assert len(secret) >= 64
    assert cred["project_id"] == dave.project_id and cred["user_id"] == dave.user_id
    assert cred["roles"] == [{"id": ROLE_IDS["member"], "name": "member", "domain_id": None}]
    assert cred["unrestricted"] is False and cred["expires_at"] is None
    assert cred["description"] == "for CI"
    assert cred["links"]["self"].endswith(f"/application_credentials/{cred['id']}")

    # Listed and shown without the secret.
    listed = (await ks.anon.get(_creds(dave.user_id), headers=ks.as_(dave.token))).json()
    assert [c["id"] for c in listed["application_credentials"]] == [cred["id"]]
    assert "secret" not in listed["application_credentials"][0]
    shown = await ks.anon.get(f"{_creds(dave.user_id)}/{cred['id']}", headers=ks.as_(dave.token))
    assert shown.status_code == 200 and "secret" not in shown.json()["application_credential"]
    # Stored hashed: the database never holds the secret.
    async with ks.db.read() as s:
        from canopy.store.models import ApplicationCredential

        row = await s.get(ApplicationCredential, cred["id"])
        assert row is not None and secret not in row.secret_hash
        assert row.secret_hash.startswith("$argon2")

    for ref in (
        {"id": cred["id"], "secret": secret},
        {"name": "ci", "secret": secret, "user": {"id": dave.user_id}},
        {"name": "ci", "secret": secret, "user": {"name": "dave", "domain": {"name": "Default"}}},
    ):
        r = await _login(ks, ref)
        assert r.status_code == 201, r.text
        token = r.json()["token"]
        assert token["methods"] == ["application_credential"]
        assert token["project"]["id"] == dave.project_id
        assert [x["name"] for x in token["roles"]] == ["member"]
        assert token["application_credential"] == {
            "id": cred["id"],
            "name": "ci",
            "restricted": True,
        }
        assert token["catalog"]
        # The token works on the other services.
        value = r.headers["X-Subject-Token"]
        servers = await ks.anon.get("/compute/v2.1/servers", headers=ks.as_(value))
        assert servers.status_code == 200, servers.text


async def test_roles_are_a_subset_of_the_token_s(ks: Keystone) -> None:
    eve = await ks.user("eve", "pw", project="p1", role="reader")
    await ks.user("eve", "pw", project="p1", role="member")
    token = await ks.token("eve", "pw", project="p1")
    r = await _create(ks, token, eve.user_id, roles=[{"name": "reader"}])
    assert r.status_code == 201, r.text
    secret = r.json()["application_credential"]["secret"]
    login = await _login(ks, {"id": r.json()["application_credential"]["id"], "secret": secret})
    assert [x["name"] for x in login.json()["token"]["roles"]] == ["reader"]
    # A reader-only token cannot be written with it.
    value = login.headers["X-Subject-Token"]
    body = {"keypair": {"name": "k"}}
    denied = await ks.anon.post("/compute/v2.1/os-keypairs", json=body, headers=ks.as_(value))
    assert denied.status_code == 403, denied.text

    # A role the token does not hold: 400, nothing stored.
    r = await _create(ks, token, eve.user_id, name="up", roles=[{"id": ROLE_IDS["admin"]}])
    assert "unassigned role" in assert_keystone_fault(r, 400)
    r = await _create(ks, token, eve.user_id, name="up", roles=[{"name": "owner"}])
    assert_keystone_fault(r, 400)
    r = await _create(ks, token, eve.user_id, name="up", roles=[{"id": "x", "name": "member"}])
    assert_keystone_fault(r, 400)
    listed = (await ks.anon.get(_creds(eve.user_id), headers=ks.as_(token))).json()
    assert [c["name"] for c in listed["application_credentials"]] == ["ci"]


async def test_names_are_unique_per_user_and_a_given_secret_is_kept(ks: Keystone) -> None:
    dave = await ks.user("dave", "pw", project="p1")
    erin = await ks.user("erin", "pw", project="p1")
    r = await _create(ks, dave.token, dave.user_id, secret="my own secret")
    assert r.status_code == 201 and r.json()["application_credential"]["secret"] == "my own secret"
    assert_keystone_fault(await _create(ks, dave.token, dave.user_id), 409)
    # Another user may use the same name.
    assert (await _create(ks, erin.token, erin.user_id)).status_code == 201
    cred_id = r.json()["application_credential"]["id"]
    ok = await _login(ks, {"id": cred_id, "secret": "my own secret"})
    assert ok.status_code == 201, ok.text
    # Filter by name.
    r = await ks.anon.get(_creds(dave.user_id), params={"name": "nope"}, headers=ks.as_(dave.token))
    assert r.json()["application_credentials"] == []


async def test_another_user_s_credentials_are_out_of_reach(ks: Keystone) -> None:
    dave = await ks.user("dave", "pw", project="p1")
    mallory = await ks.user("mallory", "pw", project="p1")
    cred = (await _create(ks, dave.token, dave.user_id)).json()["application_credential"]
    mine = _creds(mallory.user_id)
    theirs = _creds(dave.user_id)
    as_mallory = ks.as_(mallory.token)
    # Another user's path: 403, whatever the method.
    assert_keystone_fault(await ks.anon.get(theirs, headers=as_mallory), 403)
    assert_keystone_fault(await ks.anon.get(f"{theirs}/{cred['id']}", headers=as_mallory), 403)
    assert_keystone_fault(await ks.anon.delete(f"{theirs}/{cred['id']}", headers=as_mallory), 403)
    assert_keystone_fault(await _create(ks, mallory.token, dave.user_id), 403)
    # Their credential's id under one's own path: not found (the owner is the credential's).
    assert_keystone_fault(await ks.anon.get(f"{mine}/{cred['id']}", headers=as_mallory), 404)
    assert_keystone_fault(await ks.anon.delete(f"{mine}/{cred['id']}", headers=as_mallory), 404)
    # Logging in as dave's credential while naming mallory changes nothing: dave's project.
    ref = {"id": cred["id"], "secret": cred["secret"], "user": {"id": mallory.user_id}}
    r = await _login(ks, ref)
    assert r.status_code == 201 and r.json()["token"]["user"]["id"] == dave.user_id
    # A cloud admin reads and deletes anyone's, but creates none for them.
    assert (await ks.client.get(f"{theirs}/{cred['id']}")).status_code == 200
    assert_keystone_fault(await ks.client.post(theirs, json={"application_credential": {}}), 400)
    r = await ks.client.post(theirs, json={"application_credential": {"name": "x"}})
    assert_keystone_fault(r, 403)
    assert (await ks.client.delete(f"{theirs}/{cred['id']}")).status_code == 204
    assert_keystone_fault(await _login(ks, {"id": cred["id"], "secret": cred["secret"]}), 401)


async def test_wrong_unknown_expired_or_deleted_is_401(ks: Keystone) -> None:
    dave = await ks.user("dave", "pw", project="p1")
    soon = (ks.clock.now() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    r = await _create(ks, dave.token, dave.user_id, expires_at=soon)
    cred = r.json()["application_credential"]
    assert cred["expires_at"] == soon + ".000000"
    ok = await _login(ks, {"id": cred["id"], "secret": cred["secret"]})
    assert ok.status_code == 201
    # A token lives no longer than its credential (CVE-2022-2447).
    assert ok.json()["token"]["expires_at"] == soon + ".000000Z"
    value = ok.headers["X-Subject-Token"]

    assert_keystone_fault(await _login(ks, {"id": cred["id"], "secret": "wrong"}), 401)
    assert_keystone_fault(await _login(ks, {"id": "0" * 32, "secret": cred["secret"]}), 401)
    ref = {"name": "nope", "secret": cred["secret"], "user": {"id": dave.user_id}}
    assert_keystone_fault(await _login(ks, ref), 401)
    r = await _login(ks, {"id": cred["id"], "secret": "wrong"})
    assert r.headers["www-authenticate"].startswith("Keystone uri=")

    ks.clock.advance(3601)
    assert_keystone_fault(await _login(ks, {"id": cred["id"], "secret": cred["secret"]}), 401)
    assert_keystone_fault(await ks.anon.get(f"{V3}/auth/projects", headers=ks.as_(value)), 401)

    # Deleted: its tokens stop at once.
    dave_token = await ks.token("dave", "pw", project="p1")  # the first one has expired too
    r = await _create(ks, dave_token, dave.user_id, name="other")
    other = r.json()["application_credential"]
    value = (await _login(ks, {"id": other["id"], "secret": other["secret"]})).headers[
        "X-Subject-Token"
    ]
    assert (await ks.anon.get(f"{V3}/auth/projects", headers=ks.as_(value))).status_code == 200
    gone = await ks.anon.delete(f"{_creds(dave.user_id)}/{other['id']}", headers=ks.as_(dave_token))
    assert gone.status_code == 204
    assert_keystone_fault(await ks.anon.get(f"{V3}/auth/projects", headers=ks.as_(value)), 401)
    assert_keystone_fault(await _login(ks, {"id": other["id"], "secret": other["secret"]}), 401)
    # An expiry already past is refused at create.
    past = (ks.clock.now() - timedelta(seconds=1)).isoformat()
    assert_keystone_fault(await _create(ks, dave_token, dave.user_id, expires_at=past), 400)


async def test_hostile_input_is_400(ks: Keystone) -> None:
    dave = await ks.user("dave", "pw", project="p1")
    cred = (await _create(ks, dave.token, dave.user_id)).json()["application_credential"]
    # A lone surrogate in the secret, raw in the body.
    raw = (
        '{"auth": {"identity": {"methods": ["application_credential"], '
        '"application_credential": {"id": "' + cred["id"] + '", "secret": "\\ud800"}}}}'
    )
    r = await ks.anon.post(TOKENS, content=raw, headers={"content-type": "application/json"})
    assert_keystone_fault(r, 400)
    r = await ks.anon.post(
        _creds(dave.user_id),
        content='{"application_credential": {"name": "x", "secret": "\\udfff"}}',
        headers={**ks.as_(dave.token), "content-type": "application/json"},
    )
    assert_keystone_fault(r, 400)
    # A huge secret, at login and at create.
    assert_keystone_fault(await _login(ks, {"id": cred["id"], "secret": "x" * 5000}), 400)
    assert_keystone_fault(await _create(ks, dave.token, dave.user_id, secret="x" * 5000), 400)
    # Malformed references.
    for ref in (
        {"secret": "s"},
        {"id": cred["id"]},
        {"id": cred["id"], "secret": 5},
        {"name": "ci", "secret": "s"},
        {"name": "ci", "secret": "s", "user": {"name": "dave"}},
    ):
        assert_keystone_fault(await _login(ks, ref), 400)
    # A scope is refused: the credential's project is the scope (Keystone's 401).
    scope = {"scope": {"project": {"id": dave.project_id}}}
    assert_keystone_fault(
        await _login(ks, {"id": cred["id"], "secret": cred["secret"]}, **scope), 401
    )
    # Bad create bodies change nothing.
    for fields in (
        {"name": ""},
        {"name": "n" * 300},
        {"name": "x", "unknown": 1},
        {"name": "x", "expires_at": "not a date"},
        {"name": "x", "expires_at": "9999-12-31T23:59:59-01:00"},  # past year 9999 in UTC
        {"name": "x", "access_rules": [{"path": "/v2.1/servers", "method": "GET"}]},
        {"name": "x", "roles": "member"},
    ):
        body = {"application_credential": fields}
        r = await ks.anon.post(_creds(dave.user_id), json=body, headers=ks.as_(dave.token))
        assert_keystone_fault(r, 400)
    listed = (await ks.anon.get(_creds(dave.user_id), headers=ks.as_(dave.token))).json()
    assert [c["name"] for c in listed["application_credentials"]] == ["ci"]


async def test_a_restricted_credential_s_token_cannot_manage_credentials(ks: Keystone) -> None:
    dave = await ks.user("dave", "pw", project="p1")
    restricted = (await _create(ks, dave.token, dave.user_id)).json()["application_credential"]
    r = await _create(ks, dave.token, dave.user_id, name="free", unrestricted=True)
    free = r.json()["application_credential"]
    assert free["unrestricted"] is True

    async def token_of(c: dict[str, Any]) -> str:
        r = await _login(ks, {"id": c["id"], "secret": c["secret"]})
        assert r.status_code == 201, r.text
        return r.headers["X-Subject-Token"]

    limited = await token_of(restricted)
    assert_keystone_fault(await _create(ks, limited, dave.user_id, name="more"), 403)
    path = f"{_creds(dave.user_id)}/{free['id']}"
    assert_keystone_fault(await ks.anon.delete(path, headers=ks.as_(limited)), 403)
    # It may still look.
    assert (await ks.anon.get(_creds(dave.user_id), headers=ks.as_(limited))).status_code == 200
    # A token made from it keeps the credential, and may not pick another scope.
    body = {"auth": {"identity": {"methods": ["token"], "token": {"id": limited}}}}
    made = await ks.anon.post(TOKENS, json=body)
    assert made.status_code == 201, made.text
    assert made.json()["token"]["application_credential"]["id"] == restricted["id"]
    assert_keystone_fault(await _create(ks, made.headers["X-Subject-Token"], dave.user_id), 403)
    body["auth"]["scope"] = {"project": {"id": dave.project_id}}
    assert_keystone_fault(await ks.anon.post(TOKENS, json=body), 403)

    unlimited = await token_of(free)
    r = await _create(ks, unlimited, dave.user_id, name="more")
    assert r.status_code == 201, r.text


async def test_an_unscoped_token_cannot_create_one(ks: Keystone) -> None:
    dave = await ks.user("dave", "pw", project="p1")
    r = await ks.login("dave", "pw", scope="unscoped")
    assert r.status_code == 201, r.text
    unscoped = r.headers["X-Subject-Token"]
    assert_keystone_fault(await _create(ks, unscoped, dave.user_id), 400)


async def test_losing_the_role_or_the_user_takes_the_credentials(ks: Keystone) -> None:
    dave = await ks.user("dave", "pw", project="p1")
    cred = (await _create(ks, dave.token, dave.user_id)).json()["application_credential"]
    role = ROLE_IDS["member"]
    r = await ks.client.delete(f"{V3}/projects/{dave.project_id}/users/{dave.user_id}/roles/{role}")
    assert r.status_code == 204, r.text
    assert_keystone_fault(await _login(ks, {"id": cred["id"], "secret": cred["secret"]}), 401)
    r = await ks.client.get(_creds(dave.user_id))
    assert r.json()["application_credentials"] == []

    erin = await ks.user("erin", "pw", project="p1")
    cred = (await _create(ks, erin.token, erin.user_id)).json()["application_credential"]
    r = await ks.client.patch(f"{V3}/users/{erin.user_id}", json={"user": {"enabled": False}})
    assert r.status_code == 200
    assert (await ks.client.get(_creds(erin.user_id))).json()["application_credentials"] == []
    assert (await ks.client.delete(f"{V3}/users/{erin.user_id}")).status_code == 204


async def test_deleting_a_user_removes_their_credentials_from_the_store(ks: Keystone) -> None:
    from sqlalchemy import select

    from canopy.store.models import ApplicationCredential

    dave = await ks.user("dave", "pw", project="p1")
    await ks.user("dave", "pw", project="p2")
    dave_p2 = await ks.token("dave", "pw", project="p2")
    mine = [
        (await _create(ks, dave.token, dave.user_id, name="a")).json()["application_credential"],
        (await _create(ks, dave_p2, dave.user_id, name="b")).json()["application_credential"],
    ]
    erin = await ks.user("erin", "pw", project="p1")
    hers = (await _create(ks, erin.token, erin.user_id)).json()["application_credential"]

    async def stored() -> set[str]:
        async with ks.db.read() as s:
            return set((await s.execute(select(ApplicationCredential.id))).scalars())

    assert await stored() == {c["id"] for c in [*mine, hers]}
    assert (await ks.client.delete(f"{V3}/users/{dave.user_id}")).status_code == 204
    assert await stored() == {hers["id"]}  # the rows are gone, not merely hidden
    for c in mine:
        assert_keystone_fault(await _login(ks, {"id": c["id"], "secret": c["secret"]}), 401)
    r = await _login(ks, {"id": hers["id"], "secret": hers["secret"]})
    assert r.status_code == 201, r.text
