"""Disabling a user or a project, or removing a role, revokes the tokens it covers, as
Keystone's revocation events do: enabling the user or project again, or granting the role
again, does not bring those tokens back (a disabled account's stolen token stays dead)."""

from __future__ import annotations

from .conftest import V3, Keystone

TOKENS = f"{V3}/auth/tokens"
MEMBER_ROLE = "member"


async def _alive(ks: Keystone, value: str) -> bool:
    r = await ks.client.head(TOKENS, headers={"X-Subject-Token": value})
    assert r.status_code in (200, 404), r.text
    return r.status_code == 200


async def _role_id(ks: Keystone, name: str) -> str:
    r = await ks.client.get(f"{V3}/roles", params={"name": name})
    [role] = r.json()["roles"]
    role_id: str = role["id"]
    return role_id


async def test_a_user_disabled_then_enabled_keeps_its_old_tokens_revoked(ks: Keystone) -> None:
    dave = await ks.user("dave", "pw", project="p1")
    other = await ks.user("erin", "pw", project="p1")
    old = await ks.token("dave", "pw", project="p1")
    assert await _alive(ks, old)

    url = f"{V3}/users/{dave.user_id}"
    assert (await ks.client.patch(url, json={"user": {"enabled": False}})).status_code == 200
    assert not await _alive(ks, old)
    assert (await ks.client.patch(url, json={"user": {"enabled": True}})).status_code == 200

    assert not await _alive(ks, old)
    assert not await _alive(ks, dave.token)
    assert await _alive(ks, other.token)  # another user's token is untouched
    assert await _alive(ks, await ks.token("dave", "pw", project="p1"))  # a new login works


async def test_a_project_disabled_then_enabled_keeps_its_old_tokens_revoked(
    ks: Keystone,
) -> None:
    dave = await ks.user("dave", "pw", project="p1")
    elsewhere = await ks.user("dave", "pw", project="p2")  # dave's token on another project

    url = f"{V3}/projects/{dave.project_id}"
    assert (await ks.client.patch(url, json={"project": {"enabled": False}})).status_code == 200
    assert (await ks.client.patch(url, json={"project": {"enabled": True}})).status_code == 200

    assert not await _alive(ks, dave.token)
    assert await _alive(ks, elsewhere.token)
    assert await _alive(ks, await ks.token("dave", "pw", project="p1"))


async def test_a_role_removed_then_granted_again_keeps_its_old_tokens_revoked(
    ks: Keystone,
) -> None:
    dave = await ks.user("dave", "pw", project="p1")
    elsewhere = await ks.user("dave", "pw", project="p2")
    role = await _role_id(ks, MEMBER_ROLE)

    url = f"{V3}/projects/{dave.project_id}/users/{dave.user_id}/roles/{role}"
    assert (await ks.client.delete(url)).status_code == 204
    assert (await ks.client.put(url)).status_code == 204

    assert not await _alive(ks, dave.token)
    assert await _alive(ks, elsewhere.token)
    assert await _alive(ks, await ks.token("dave", "pw", project="p1"))


async def test_enabling_an_enabled_user_revokes_nothing(ks: Keystone) -> None:
    dave = await ks.user("dave", "pw", project="p1")
    url = f"{V3}/users/{dave.user_id}"
    assert (await ks.client.patch(url, json={"user": {"enabled": True}})).status_code == 200
    url = f"{V3}/projects/{dave.project_id}"
    assert (await ks.client.patch(url, json={"project": {"enabled": True}})).status_code == 200
    assert await _alive(ks, dave.token)
