"""Version documents, microversion negotiation and the fault bodies of the compute prefix."""

from __future__ import annotations

import pytest

from canopy.api.compute.microversion import MAX_VERSION
from tests.api.compute.helpers import V21, fault, who
from tests.api.conftest import Api

MAX = f"{MAX_VERSION[0]}.{MAX_VERSION[1]}"


@pytest.mark.parametrize("path", ["/compute", "/compute/"])
async def test_root_lists_v21_without_a_token(api: Api, path: str) -> None:
    r = await api.client.get(path, headers={"X-Auth-Token": ""})
    assert r.status_code == 200
    [v] = r.json()["versions"]
    assert v["id"] == "v2.1" and v["status"] == "CURRENT"
    assert (v["version"], v["min_version"]) == (MAX, "2.1")
    assert v["updated"].endswith("Z")
    assert {"rel": "self", "href": "http://canopy.test/compute/v2.1/"} in v["links"]


@pytest.mark.parametrize("path", ["/compute/v2.1", "/compute/v2.1/"])
async def test_v21_document_without_a_token(api: Api, path: str) -> None:
    r = await api.client.get(path, headers={"X-Auth-Token": ""})
    assert r.status_code == 200
    v = r.json()["version"]
    assert (v["id"], v["status"], v["version"], v["min_version"]) == (
        "v2.1",
        "CURRENT",
        MAX,
        "2.1",
    )
    assert v["links"][0] == {"rel": "self", "href": "http://canopy.test/compute/v2.1/"}
    assert v["media-types"][0]["base"] == "application/json"


async def test_public_url_is_used_for_links(api: Api) -> None:
    api.plane.settings.api.public_url = "https://cloud.example.com:8774/"
    r = await api.client.get("/compute/")
    assert r.json()["versions"][0]["links"][0]["href"] == (
        "https://cloud.example.com:8774/compute/v2.1/"
    )


async def test_microversion_headers_are_echoed(api: Api) -> None:
    w = await who(api)
    for sent, echoed in (
        (None, "2.1"),
        ("2.1", "2.1"),
        ("2.47", "2.47"),
        ("2.79", "2.79"),
        ("latest", MAX),
    ):
        r = await api.client.get(f"{V21}/flavors", headers=w.h(sent))
        assert r.status_code == 200
        assert r.headers["OpenStack-API-Version"] == f"compute {echoed}"
        assert r.headers["X-OpenStack-Nova-API-Version"] == echoed
        assert "OpenStack-API-Version" in r.headers["Vary"]
    # The legacy header alone works too.
    r = await api.client.get(
        f"{V21}/flavors", headers={**w.h(), "X-OpenStack-Nova-API-Version": "2.60"}
    )
    assert r.headers["X-OpenStack-Nova-API-Version"] == "2.60"


async def test_version_out_of_range_is_406_and_garbage_400(api: Api) -> None:
    w = await who(api)
    r = await api.client.get(f"{V21}/servers", headers=w.h("2.200"))
    assert "2.200" in fault(r, 406)
    r = await api.client.get(f"{V21}/servers", headers=w.h("2.80"))
    fault(r, 406)
    r = await api.client.get(f"{V21}/servers", headers=w.h("two"))
    fault(r, 400)


async def test_unknown_route_and_method(api: Api) -> None:
    w = await who(api)
    r = await api.client.get(f"{V21}/no-such-thing", headers=w.h())
    fault(r, 404)
    r = await api.client.get("/compute/v3", headers=w.h())
    fault(r, 404)
    r = await api.client.patch(f"{V21}/servers", headers=w.h(), json={})
    fault(r, 405)
    r = await api.client.patch(f"{V21}/flavors/1", headers=w.h(), json={})
    fault(r, 405)


async def test_token_is_required(api: Api) -> None:
    # The fixture's client carries an admin token by default: blank it.
    r = await api.client.get(f"{V21}/servers/detail", headers={"X-Auth-Token": ""})
    fault(r, 401)
    r = await api.client.get(f"{V21}/flavors", headers={"X-Auth-Token": "bogus"})
    fault(r, 401)
