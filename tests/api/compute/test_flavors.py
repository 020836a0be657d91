"""GET /flavors, /flavors/detail and /flavors/{id}: fields per microversion, filters, paging."""

from __future__ import annotations

import pytest

from tests.api.compute.helpers import V21, fault, who
from tests.api.conftest import Api

NAMES = ["m1.tiny", "m1.small", "m1.medium", "m1.large", "m1.xlarge"]


@pytest.mark.parametrize("version", ["2.1", "2.55", "2.61", "2.75", "2.79"])
async def test_flavor_fields_by_version(api: Api, version: str) -> None:
    w = await who(api)
    r = await api.client.get(f"{V21}/flavors/detail?is_public=True", headers=w.h(version))
    assert r.status_code == 200
    flavors = r.json()["flavors"]
    assert [f["name"] for f in flavors] == NAMES
    assert [f["id"] for f in flavors] == ["1", "2", "3", "4", "5"]
    tiny = flavors[0]
    expected = {
        "id", "name", "links", "ram", "disk", "swap", "vcpus", "OS-FLV-EXT-DATA:ephemeral",
        "OS-FLV-DISABLED:disabled", "os-flavor-access:is_public", "rxtx_factor",
    }  # fmt: skip
    v = int(version.split(".")[1])
    if v >= 55:
        expected.add("description")
    if v >= 61:
        expected.add("extra_specs")
    assert set(tiny) == expected
    assert (tiny["ram"], tiny["disk"], tiny["vcpus"]) == (512, 1, 1)
    assert tiny["swap"] == (0 if v >= 75 else "")
    assert tiny["OS-FLV-EXT-DATA:ephemeral"] == 0 and tiny["OS-FLV-DISABLED:disabled"] is False
    assert tiny["os-flavor-access:is_public"] is True and tiny["rxtx_factor"] == 1.0
    assert tiny["links"] == [
        {"rel": "self", "href": "http://canopy.test/compute/v2.1/flavors/1"},
        {"rel": "bookmark", "href": "http://canopy.test/compute/flavors/1"},
    ]
    r = await api.client.get(f"{V21}/flavors", headers=w.h(version))
    brief = r.json()["flavors"][0]
    assert set(brief) == {"id", "name", "links"} | ({"description"} if v >= 55 else set())


async def test_flavor_by_id_and_not_by_name(api: Api) -> None:
    w = await who(api)
    r = await api.client.get(f"{V21}/flavors/1", headers=w.h("2.61"))
    assert r.status_code == 200 and r.json()["flavor"]["name"] == "m1.tiny"
    r = await api.client.get(f"{V21}/flavors/m1.tiny", headers=w.h("2.61"))
    assert fault(r, 404) == "Flavor m1.tiny could not be found."
    # ... so OSC lists with is_public=None and matches the name itself.
    r = await api.client.get(f"{V21}/flavors/detail?is_public=None", headers=w.h("2.61"))
    assert "m1.tiny" in [f["name"] for f in r.json()["flavors"]]
    r = await api.client.get(f"{V21}/flavors/1/os-extra_specs", headers=w.h())
    assert r.json() == {"extra_specs": {}}
    fault(await api.client.get(f"{V21}/flavors/1/os-extra_specs/hw:cpu", headers=w.h()), 404)


async def test_flavor_filters_and_pages(api: Api) -> None:
    w = await who(api)

    async def names(q: str, version: str = "2.61") -> list[str]:
        r = await api.client.get(f"{V21}/flavors/detail?{q}", headers=w.h(version))
        assert r.status_code == 200, r.text
        return [f["name"] for f in r.json()["flavors"]]

    assert await names("minRam=4096") == ["m1.medium", "m1.large", "m1.xlarge"]
    assert await names("minDisk=80") == ["m1.large", "m1.xlarge"]
    assert await names("sort_key=name&sort_dir=desc") == sorted(NAMES, reverse=True)
    assert await names("sort_key=memory_mb&sort_dir=desc&limit=2") == ["m1.xlarge", "m1.large"]
    r = await api.client.get(f"{V21}/flavors?limit=2", headers=w.h())
    data = r.json()
    assert [f["id"] for f in data["flavors"]] == ["1", "2"]
    href = data["flavors_links"][0]["href"]
    assert href == "http://canopy.test/compute/v2.1/flavors?limit=2&marker=2"
    r = await api.client.get(href.removeprefix("http://canopy.test"), headers=w.h())
    assert [f["id"] for f in r.json()["flavors"]] == ["3", "4"]
    r = await api.client.get(f"{V21}/flavors?limit=2&marker=4", headers=w.h())
    assert [f["id"] for f in r.json()["flavors"]] == ["5"] and "flavors_links" not in r.json()
    assert fault(await api.client.get(f"{V21}/flavors?marker=9", headers=w.h()), 400) == (
        "marker [9] not found"
    )
    assert "minRam" in fault(await api.client.get(f"{V21}/flavors?minRam=lots", headers=w.h()), 400)
    fault(await api.client.get(f"{V21}/flavors?sort_key=colour", headers=w.h()), 400)
    r = await api.client.get(f"{V21}/flavors?colour=red", headers=w.h("2.74"))
    assert r.status_code == 200
    fault(await api.client.get(f"{V21}/flavors?colour=red", headers=w.h("2.75")), 400)
    # Only an admin's is_public is read; bad values are refused.
    admin = await who(api, role="admin", project="admin")
    r = await api.client.get(f"{V21}/flavors?is_public=maybe", headers=admin.h())
    assert fault(r, 400) == "Invalid is_public filter [maybe]"
    r = await api.client.get(f"{V21}/flavors?is_public=false", headers=admin.h())
    assert r.json()["flavors"] == []
    assert await names("is_public=false") == NAMES  # a member always sees the public ones
