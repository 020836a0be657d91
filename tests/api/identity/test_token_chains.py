"""Tokens made from tokens: Keystone's audit chain, and revoking a token revokes every token
made from it (however deep), never the one it was made from."""

from __future__ import annotations

from typing import Any

from .conftest import ADMIN_PASSWORD, V3, Keystone, assert_keystone_fault

TOKENS = f"{V3}/auth/tokens"


async def _from_token(ks: Keystone, value: str, project: str) -> tuple[str, dict[str, Any]]:
    body = {
        "auth": {
            "identity": {"methods": ["token"], "token": {"id": value}},
            "scope": {"project": {"name": project, "domain": {"name": "Default"}}},
        }
    }
    r = await ks.anon.post(TOKENS, json=body)
    assert r.status_code == 201, r.text
    doc: dict[str, Any] = r.json()["token"]
    return r.headers["X-Subject-Token"], doc


async def _alive(ks: Keystone, value: str) -> bool:
    r = await ks.client.head(TOKENS, headers={"X-Subject-Token": value})
    assert r.status_code in (200, 404), r.text
    return r.status_code == 200


async def test_audit_ids_name_the_first_token_of_the_chain(ks: Keystone) -> None:
    await ks.user("dave", "pw", project="p1")
    await ks.user("dave", "pw", project="p2")
    first = await ks.login("dave", "pw", project="p1")
    root = first.json()["token"]["audit_ids"]
    assert len(root) == 1
    second, doc2 = await _from_token(ks, first.headers["X-Subject-Token"], "p2")
    _, doc3 = await _from_token(ks, second, "p1")
    assert doc2["audit_ids"][1:] == root
    # A token made from a rescoped one still names the first token, as Keystone's does.
    assert doc3["audit_ids"][1:] == root
    assert len({doc2["audit_ids"][0], doc3["audit_ids"][0], root[0]}) == 3
    # Validation shows the same chain.
    r = await ks.client.get(TOKENS, headers={"X-Subject-Token": second})
    assert r.json()["token"]["audit_ids"] == doc2["audit_ids"]


async def test_revoking_a_token_revokes_those_made_from_it(ks: Keystone) -> None:
    await ks.user("dave", "pw", project="p1")
    await ks.user("dave", "pw", project="p2")
    a = await ks.token("dave", "pw", project="p1")
    b, _ = await _from_token(ks, a, "p2")
    c, _ = await _from_token(ks, b, "p1")
    d, _ = await _from_token(ks, a, "p1")  # a sibling of b
    other = await ks.token("dave", "pw", project="p2")  # a chain of its own

    r = await ks.anon.delete(TOKENS, headers={"X-Auth-Token": b, "X-Subject-Token": b})
    assert r.status_code == 204
    assert [await _alive(ks, t) for t in (a, b, c, d, other)] == [True, False, False, True, True]
    r = await ks.anon.get(f"{V3}/auth/projects", headers=ks.as_(c))
    assert_keystone_fault(r, 401)

    assert (await ks.client.delete(TOKENS, headers={"X-Subject-Token": a})).status_code == 204
    assert [await _alive(ks, t) for t in (a, d, other)] == [False, False, True]


async def test_a_revoked_token_makes_no_new_tokens(ks: Keystone) -> None:
    a = await ks.token("admin", ADMIN_PASSWORD, project="admin")
    assert (await ks.client.delete(TOKENS, headers={"X-Subject-Token": a})).status_code == 204
    body = {"auth": {"identity": {"methods": ["token"], "token": {"id": a}}}}
    assert_keystone_fault(await ks.anon.post(TOKENS, json=body), 401)


async def test_the_token_body_says_whether_its_project_is_the_admin_project(
    ks: Keystone,
) -> None:
    await ks.user("pat", "pw", project="p1", role="admin")
    r = await ks.login("admin", ADMIN_PASSWORD, project="admin")
    assert r.json()["token"]["is_admin_project"] is True
    r = await ks.login("pat", "pw", project="p1")
    assert r.json()["token"]["is_admin_project"] is False
    r = await ks.login("pat", "pw", scope="unscoped")
    assert "is_admin_project" not in r.json()["token"]
