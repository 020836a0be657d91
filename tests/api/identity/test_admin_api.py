"""The /canopy/v1 admin API now needs a token, and the admin role on its project."""

from __future__ import annotations

from .conftest import Keystone, assert_keystone_fault


async def test_the_admin_api_without_a_token_is_401(ks: Keystone) -> None:
    for path in ("/canopy/v1/clouds", "/canopy/v1/spend", "/canopy/v1/servers"):
        r = await ks.anon.get(path)
        assert r.status_code == 401, (path, r.text)
        assert list(r.json()) == ["unauthorized"]  # canopy's own fault body, not Keystone's
    r = await ks.anon.get("/canopy/v1/clouds", headers={"X-Auth-Token": "not-a-token"})
    assert r.status_code == 401


async def test_the_admin_api_with_a_member_or_reader_token_is_403(ks: Keystone) -> None:
    for role in ("member", "reader"):
        who = await ks.user(f"u-{role}", "pw", role=role)
        r = await ks.anon.get("/canopy/v1/clouds", headers=who.headers)
        assert r.status_code == 403, r.text
        assert list(r.json()) == ["forbidden"]
        r = await ks.anon.post("/canopy/v1/images", json={"name": "x"}, headers=who.headers)
        assert r.status_code == 403


async def test_the_admin_api_with_an_admin_token_works(ks: Keystone) -> None:
    r = await ks.client.get("/canopy/v1/clouds")
    assert r.status_code == 200, r.text
    token = await ks.token("admin", "admin-secret", project="admin")
    r = await ks.anon.get("/canopy/v1/clouds", headers=ks.as_(token))
    assert r.status_code == 200


async def test_identity_401s_carry_the_challenge_but_the_admin_api_does_not(
    ks: Keystone,
) -> None:
    r = await ks.anon.get("/canopy/v1/clouds")
    assert "WWW-Authenticate" not in r.headers
    r = await ks.anon.get("/identity/v3/projects")
    assert_keystone_fault(r, 401)
    assert r.headers["WWW-Authenticate"] == 'Keystone uri="http://canopy.test/identity"'
