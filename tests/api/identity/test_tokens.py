"""POST/GET/HEAD/DELETE /v3/auth/tokens: the password and token methods, scopes, the
catalog, validation, revocation and expiry, with Keystone's bodies and faults."""

from __future__ import annotations

import re
from typing import Any

import httpx

from canopy.services import identity
from canopy.services.identity import ROLE_IDS
from canopy.services.passwords import hash_password

from .conftest import ADMIN_PASSWORD, BASE, TTL, V3, Keystone, assert_keystone_fault

TOKENS = f"{V3}/auth/tokens"
KEYSTONE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def _token(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code in (200, 201), r.text
    token: dict[str, Any] = r.json()["token"]
    return token


async def test_password_by_name_scoped_to_a_project_by_name(ks: Keystone) -> None:
    r = await ks.login("admin", ADMIN_PASSWORD, project="admin")
    assert r.status_code == 201, r.text
    value = r.headers["X-Subject-Token"]
    assert len(value) >= 32
    t = _token(r)
    assert t["methods"] == ["password"]
    assert t["user"] == {
        "id": ks.admin.user_id,
        "name": "admin",
        "domain": {"id": "default", "name": "Default"},
        "password_expires_at": None,
    }
    assert t["project"] == {
        "id": ks.admin.project_id,
        "name": "admin",
        "domain": {"id": "default", "name": "Default"},
    }
    assert t["roles"] == [{"id": ROLE_IDS["admin"], "name": "admin"}]
    assert t["is_domain"] is False
    assert len(t["audit_ids"]) == 1
    assert KEYSTONE_TIME.match(t["issued_at"]) and KEYSTONE_TIME.match(t["expires_at"])
    assert t["issued_at"] == "2026-01-01T00:00:00.000000Z"  # the fake clock's start
    assert t["expires_at"] == "2026-01-01T01:00:00.000000Z"  # + token_ttl_seconds


async def test_the_catalog_has_identity_compute_and_image_on_every_interface(
    ks: Keystone,
) -> None:
    t = _token(await ks.login("admin", ADMIN_PASSWORD, project="admin"))
    by_type = {entry["type"]: entry for entry in t["catalog"]}
    assert set(by_type) == {"identity", "compute", "image", "reservation", "orchestration"}
    urls = {
        "identity": "/identity",
        "compute": "/compute/v2.1",
        "image": "/image",
        "reservation": "/reservation/v1",
        # Heat's endpoint names the token's project.
        "orchestration": f"/orchestration/v1/{t['project']['id']}",
    }
    names = {
        "identity": "keystone",
        "compute": "nova",
        "image": "glance",
        "reservation": "blazar",
        "orchestration": "heat",
    }
    for kind, entry in by_type.items():
        assert entry["name"] == names[kind] and entry["id"]
        assert sorted(e["interface"] for e in entry["endpoints"]) == [
            "admin",
            "internal",
            "public",
        ]
        for e in entry["endpoints"]:
            assert e["url"] == BASE + urls[kind]
            assert e["region_id"] == e["region"] == "RegionTest"
            assert e["id"]


async def test_nocatalog_leaves_the_catalog_out(ks: Keystone) -> None:
    t = _token(await ks.login("admin", ADMIN_PASSWORD, project="admin", query="?nocatalog"))
    assert "catalog" not in t
    assert t["project"]["name"] == "admin"


async def test_password_by_user_id_and_project_id(ks: Keystone) -> None:
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"id": ks.admin.user_id, "password": ADMIN_PASSWORD}},
            },
            "scope": {"project": {"id": ks.admin.project_id}},
        }
    }
    t = _token(await ks.anon.post(TOKENS, json=body))
    assert t["user"]["name"] == "admin" and t["project"]["id"] == ks.admin.project_id


async def test_domain_by_id_works_as_well_as_by_name(ks: Keystone) -> None:
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {
                        "name": "admin",
                        "domain": {"id": "default"},
                        "password": ADMIN_PASSWORD,
                    }
                },
            },
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}},
        }
    }
    assert _token(await ks.anon.post(TOKENS, json=body))["project"]["name"] == "admin"


async def test_unscoped_on_request_and_for_a_user_without_a_default_project(
    ks: Keystone,
) -> None:
    t = _token(await ks.login("admin", ADMIN_PASSWORD, scope="unscoped"))
    assert "project" not in t and t["roles"] == []
    # A user whose default project is not set gets an unscoped token when asking for none.
    async with ks.db.session() as s:
        await identity.create_user(s, "loner", hash_password("pw"), ks.clock.now())
    t = _token(await ks.login("loner", "pw"))
    assert "project" not in t and t["roles"] == []
    assert t["user"]["name"] == "loner"
    assert {e["type"] for e in t["catalog"]} == {"identity", "compute", "image", "reservation"}


async def test_no_scope_means_the_default_project_as_in_keystone(ks: Keystone) -> None:
    # caller() makes the project the user's default project.
    await ks.user("carol", "pw", project="p1")
    t = _token(await ks.login("carol", "pw"))
    assert t["project"]["name"] == "p1"
    assert t["roles"] == [{"id": ROLE_IDS["member"], "name": "member"}]


async def test_an_unscoped_token_is_enough_for_identity_but_not_for_the_admin_api(
    ks: Keystone,
) -> None:
    value = (await ks.login("admin", ADMIN_PASSWORD, scope="unscoped")).headers["X-Subject-Token"]
    r = await ks.anon.get(f"{V3}/auth/projects", headers=ks.as_(value))
    assert r.status_code == 200
    assert [p["name"] for p in r.json()["projects"]] == ["admin"]
    r = await ks.anon.get("/canopy/v1/clouds", headers=ks.as_(value))
    assert r.status_code == 401


async def test_the_token_method_rescopes_and_keeps_the_expiry(ks: Keystone) -> None:
    await ks.user("dave", "pw", project="p1")
    await ks.user("dave", "pw", project="p2")
    first = await ks.login("dave", "pw", project="p1")
    ks.clock.advance(600)
    body = {
        "auth": {
            "identity": {"methods": ["token"], "token": {"id": first.headers["X-Subject-Token"]}},
            "scope": {"project": {"name": "p2", "domain": {"name": "Default"}}},
        }
    }
    r = await ks.anon.post(TOKENS, json=body)
    t = _token(r)
    parent = _token(first)
    assert t["project"]["name"] == "p2"
    assert t["methods"] == ["token", "password"]
    assert t["expires_at"] == parent["expires_at"]
    assert t["audit_ids"][1] == parent["audit_ids"][0]
    assert r.headers["X-Subject-Token"] != first.headers["X-Subject-Token"]


async def test_the_token_method_cannot_reach_a_project_without_a_role(ks: Keystone) -> None:
    await ks.user("erin", "pw", project="p1")
    value = await ks.token("erin", "pw", project="p1")
    body = {
        "auth": {
            "identity": {"methods": ["token"], "token": {"id": value}},
            "scope": {"project": {"id": ks.admin.project_id}},
        }
    }
    assert "no access" in assert_keystone_fault(await ks.anon.post(TOKENS, json=body), 401)


async def test_a_bad_password_is_401_with_keystones_fault_and_challenge(ks: Keystone) -> None:
    r = await ks.login("admin", "wrong", project="admin")
    message = assert_keystone_fault(r, 401)
    assert message == "The request you have made requires authentication."
    assert r.json()["error"]["title"] == "Unauthorized"
    assert r.headers["WWW-Authenticate"] == f'Keystone uri="{BASE}/identity"'
    # An unknown user reads exactly the same: no way to find out who exists.
    r2 = await ks.login("nobody", "wrong", project="admin")
    assert r2.json() == r.json()


async def test_an_unknown_project_or_a_project_without_a_role_is_401(ks: Keystone) -> None:
    assert "nope" in assert_keystone_fault(
        await ks.login("admin", ADMIN_PASSWORD, project="nope"), 401
    )
    await ks.user("frank", "pw", project="p1")
    assert "no access" in assert_keystone_fault(await ks.login("frank", "pw", project="admin"), 401)


async def test_domain_and_system_scope_are_refused_clearly(ks: Keystone) -> None:
    for scope in ({"domain": {"id": "default"}}, {"system": {"all": True}}):
        message = assert_keystone_fault(await ks.login("admin", ADMIN_PASSWORD, scope=scope), 401)
        assert "project-scoped and unscoped tokens only" in message


async def test_malformed_requests_are_400(ks: Keystone) -> None:
    bad: list[Any] = [
        {},
        {"auth": {}},
        {"auth": {"identity": {"methods": []}}},
        {"auth": {"identity": {"methods": ["password"]}}},
        {"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "a"}}}}},
        {  # a name needs its domain
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {"user": {"name": "admin", "password": ADMIN_PASSWORD}},
                }
            }
        },
        [1, 2],
    ]
    for body in bad:
        assert_keystone_fault(await ks.anon.post(TOKENS, json=body), 400)
    r = await ks.anon.post(
        TOKENS, content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert_keystone_fault(r, 400)


async def test_an_unsupported_method_or_another_domain_is_401(ks: Keystone) -> None:
    body = {"auth": {"identity": {"methods": ["totp"], "totp": {}}}}
    assert "unsupported method" in assert_keystone_fault(await ks.anon.post(TOKENS, json=body), 401)
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": "admin", "domain": {"name": "Other"}, "password": "x"}
                },
            }
        }
    }
    assert_keystone_fault(await ks.anon.post(TOKENS, json=body), 401)


async def test_a_disabled_user_cannot_log_in(ks: Keystone) -> None:
    bob = await ks.user("bob", "pw")
    r = await ks.client.patch(f"{V3}/users/{bob.user_id}", json={"user": {"enabled": False}})
    assert r.status_code == 200
    assert_keystone_fault(await ks.login("bob", "pw", project="demo"), 401)
    # and the token it already had stops working
    assert (await ks.anon.get("/canopy/v1/clouds", headers=bob.headers)).status_code == 401


async def test_validate_head_and_revoke(ks: Keystone) -> None:
    subject = await ks.token("admin", ADMIN_PASSWORD, project="admin")
    headers = {"X-Subject-Token": subject}
    r = await ks.client.get(TOKENS, headers=headers)
    assert r.status_code == 200 and r.headers["X-Subject-Token"] == subject
    t = _token(r)
    assert t["project"]["name"] == "admin" and t["catalog"]
    assert "catalog" not in _token(await ks.client.get(f"{TOKENS}?nocatalog", headers=headers))
    assert (await ks.client.head(TOKENS, headers=headers)).status_code == 200

    assert (await ks.client.delete(TOKENS, headers=headers)).status_code == 204
    assert "Could not find token" in assert_keystone_fault(
        await ks.client.get(TOKENS, headers=headers), 404
    )
    assert (await ks.client.head(TOKENS, headers=headers)).status_code == 404
    assert_keystone_fault(await ks.client.delete(TOKENS, headers=headers), 404)
    # a revoked token is no credential either
    r = await ks.anon.get(f"{V3}/auth/projects", headers=ks.as_(subject))
    assert_keystone_fault(r, 401)
    assert r.headers["WWW-Authenticate"].startswith("Keystone uri=")


async def test_validation_needs_a_valid_caller_and_a_subject(ks: Keystone) -> None:
    subject = await ks.token("admin", ADMIN_PASSWORD, project="admin")
    r = await ks.anon.get(TOKENS, headers={"X-Subject-Token": subject})
    assert_keystone_fault(r, 401)
    r = await ks.anon.get(TOKENS, headers={"X-Subject-Token": subject, "X-Auth-Token": "junk"})
    assert_keystone_fault(r, 401)
    assert_keystone_fault(await ks.client.get(TOKENS), 400)


async def test_tokens_expire_on_the_clock(ks: Keystone) -> None:
    subject = await ks.token("admin", ADMIN_PASSWORD, project="admin")
    headers = {"X-Subject-Token": subject}
    ks.clock.advance(TTL - 1)
    assert (await ks.anon.head(TOKENS, headers={**headers, **ks.as_(subject)})).status_code == 200
    ks.clock.advance(2)
    # the admin fixture's own token has expired too: log in again to look
    fresh = await ks.token("admin", ADMIN_PASSWORD, project="admin")
    r = await ks.anon.get(TOKENS, headers={**headers, **ks.as_(fresh)})
    assert_keystone_fault(r, 404)
    r = await ks.anon.get(f"{V3}/auth/projects", headers=ks.as_(subject))
    assert_keystone_fault(r, 401)


async def test_a_readers_token_validates_with_the_reader_role(ks: Keystone) -> None:
    await ks.user("rita", "pw", project="demo", role="reader")
    subject = await ks.token("rita", "pw", project="demo")
    t = _token(await ks.client.get(TOKENS, headers={"X-Subject-Token": subject}))
    assert t["roles"] == [{"id": ROLE_IDS["reader"], "name": "reader"}]
    # and she may validate her own token, not the admin's
    own = await ks.anon.get(TOKENS, headers={"X-Subject-Token": subject, **ks.as_(subject)})
    assert own.status_code == 200
    theirs = await ks.anon.get(
        TOKENS, headers={"X-Subject-Token": ks.admin.token, **ks.as_(subject)}
    )
    assert_keystone_fault(theirs, 403)


async def test_a_revoked_role_invalidates_the_token_at_once(ks: Keystone) -> None:
    sam = await ks.user("sam", "pw", project="demo")
    subject = await ks.token("sam", "pw", project="demo")
    r = await ks.client.delete(
        f"{V3}/projects/{sam.project_id}/users/{sam.user_id}/roles/{ROLE_IDS['member']}"
    )
    assert r.status_code == 204
    assert_keystone_fault(await ks.client.get(TOKENS, headers={"X-Subject-Token": subject}), 404)


async def test_auth_catalog_projects_domains_and_system(ks: Keystone) -> None:
    r = await ks.client.get(f"{V3}/auth/catalog")
    assert r.status_code == 200
    assert {e["type"] for e in r.json()["catalog"]} == {
        "identity",
        "compute",
        "image",
        "reservation",
        "orchestration",
    }
    r = await ks.client.get(f"{V3}/auth/projects")
    assert [p["id"] for p in r.json()["projects"]] == [ks.admin.project_id]
    assert (await ks.client.get(f"{V3}/auth/domains")).json()["domains"] == []
    assert (await ks.client.get(f"{V3}/auth/system")).json()["system"] == []
    assert_keystone_fault(await ks.anon.get(f"{V3}/auth/catalog"), 401)


async def test_a_lone_surrogate_in_a_login_is_400_not_a_crash(ks: Keystone) -> None:
    template = (
        '{"auth": {"identity": {"methods": ["password"], "password": {"user": '
        '{"name": %s, "domain": {"name": "Default"}, "password": %s}}}}}'
    )
    for name, password in (('"x\\ud800"', '"pw"'), ('"admin"', '"p\\ud800"')):
        r = await ks.anon.post(
            TOKENS,
            content=template % (name, password),
            headers={"Content-Type": "application/json"},
        )
        assert "not valid Unicode" in assert_keystone_fault(r, 400)
