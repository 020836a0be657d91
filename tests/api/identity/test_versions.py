"""Version discovery: what keystoneauth fetches, without a token, before anything else."""

from __future__ import annotations

import pytest

from .conftest import BASE, Keystone


@pytest.mark.parametrize("path", ["/identity", "/identity/"])
async def test_the_root_lists_v3_with_300(ks: Keystone, path: str) -> None:
    r = await ks.anon.get(path)
    assert r.status_code == 300, r.text
    (v,) = r.json()["versions"]["values"]
    assert v["id"] == "v3.14" and v["status"] == "stable" and v["updated"]
    assert v["links"] == [{"rel": "self", "href": f"{BASE}/identity/v3/"}]
    assert v["media-types"][0]["base"] == "application/json"


@pytest.mark.parametrize("path", ["/identity/v3", "/identity/v3/"])
async def test_v3_describes_itself(ks: Keystone, path: str) -> None:
    r = await ks.anon.get(path)
    assert r.status_code == 200, r.text
    v = r.json()["version"]
    assert v["id"] == "v3.14" and v["status"] == "stable"
    assert v["links"][0] == {"rel": "self", "href": f"{BASE}/identity/v3/"}
