"""Flavors and images with their per-cloud mappings; registering and mapping images."""

from __future__ import annotations

import uuid

from .conftest import Api, assert_fault


async def test_flavors_show_each_clouds_mapping_and_price(api: Api) -> None:
    r = await api.client.get("/canopy/v1/flavors")
    assert r.status_code == 200
    flavors = {f["name"]: f for f in r.json()["items"]}
    assert set(flavors) == {"m1.tiny", "m1.small", "m1.medium", "m1.large", "m1.xlarge"}
    small = flavors["m1.small"]
    assert (small["vcpus"], small["ram_mb"], small["disk_gb"]) == (1, 2048, 20)
    prices = {m["cloud"]: (m["remote_flavor"], m["price_per_hour"]) for m in small["mappings"]}
    assert prices == {"private": ("m1.small", 0.0), "public": ("m1.small", 0.05)}


async def test_seeded_images_are_listed(api: Api) -> None:
    r = await api.client.get("/canopy/v1/images")
    assert r.status_code == 200
    body = r.json()
    assert [i["name"] for i in body["items"]] == ["cirros", "ubuntu-24.04"]
    assert body["next"] is None
    assert all(i["mappings"] == [] for i in body["items"])


async def test_register_an_image_with_mappings(api: Api) -> None:
    api.wake.clear()
    r = await api.client.post(
        "/canopy/v1/images", json={"name": "debian-12", "map": {"public": "img-deb12"}}
    )
    assert r.status_code == 201, r.text
    img = r.json()
    assert img["name"] == "debian-12" and img["status"] == "active"
    assert uuid.UUID(img["id"])
    assert img["mappings"] == [{"cloud": "public", "remote_image": "img-deb12"}]
    assert api.wake.is_set()  # the controllers are told that something changed

    r = await api.client.get(f"/canopy/v1/images/{img['id']}")
    assert r.status_code == 200 and r.json() == img
    names = [i["name"] for i in (await api.client.get("/canopy/v1/images")).json()["items"]]
    assert names == ["cirros", "debian-12", "ubuntu-24.04"]


async def test_register_with_a_chosen_id(api: Api) -> None:
    chosen = str(uuid.uuid4())
    r = await api.client.post("/canopy/v1/images", json={"name": "alpine", "id": chosen})
    assert r.status_code == 201 and r.json()["id"] == chosen
    r = await api.client.post("/canopy/v1/images", json={"name": "alpine-2", "id": chosen})
    assert_fault(r, 409, "conflictingRequest")
    r = await api.client.post("/canopy/v1/images", json={"name": "x", "id": "not-a-uuid"})
    assert "id" in assert_fault(r, 400, "badRequest")


async def test_duplicate_name_is_a_conflict(api: Api) -> None:
    r = await api.client.post("/canopy/v1/images", json={"name": "cirros"})
    assert "cirros" in assert_fault(r, 409, "conflictingRequest")
    names = [i["name"] for i in (await api.client.get("/canopy/v1/images")).json()["items"]]
    assert names.count("cirros") == 1


async def test_unknown_cloud_in_the_map_is_rejected_and_nothing_is_written(api: Api) -> None:
    r = await api.client.post(
        "/canopy/v1/images", json={"name": "fedora", "map": {"public": "f", "mars": "m"}}
    )
    message = assert_fault(r, 400, "badRequest")
    assert "mars" in message and "map" in message
    names = [i["name"] for i in (await api.client.get("/canopy/v1/images")).json()["items"]]
    assert "fedora" not in names


async def test_bad_registration_bodies(api: Api) -> None:
    bodies = [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": 42}, "name"),
        ({"name": "n" * 256}, "name"),
        ({"name": "ok", "map": ["public"]}, "map"),
        ({"name": "ok", "map": {"public": 7}}, "map.public"),
        ({"name": "ok", "colour": "blue"}, "colour"),
        ({"name": "nul\u0000byte"}, "name"),
    ]
    for body, field in bodies:
        r = await api.client.post("/canopy/v1/images", json=body)
        assert field in assert_fault(r, 400, "badRequest"), body
    r = await api.client.post("/canopy/v1/images", json=["name"])
    assert_fault(r, 400, "badRequest")


async def test_map_an_image_onto_a_cloud(api: Api) -> None:
    images = (await api.client.get("/canopy/v1/images")).json()["items"]
    cirros = next(i for i in images if i["name"] == "cirros")
    api.wake.clear()
    url = f"/canopy/v1/images/{cirros['id']}/map/public"
    r = await api.client.put(url, json={"remote_image": "cirros-0.6"})
    assert r.status_code == 200, r.text
    assert r.json()["mappings"] == [{"cloud": "public", "remote_image": "cirros-0.6"}]
    assert api.wake.is_set()
    r = await api.client.put(url, json={"remote_image": "cirros-0.7"})
    assert r.json()["mappings"] == [{"cloud": "public", "remote_image": "cirros-0.7"}]

    r = await api.client.put(
        f"/canopy/v1/images/{cirros['id']}/map/mars", json={"remote_image": "x"}
    )
    assert "mars" in assert_fault(r, 404, "itemNotFound")
    r = await api.client.put("/canopy/v1/images/nope/map/public", json={"remote_image": "x"})
    assert_fault(r, 404, "itemNotFound")
    r = await api.client.put(url, json={"remote_image": ""})
    assert "remote_image" in assert_fault(r, 400, "badRequest")
    r = await api.client.put(url, json={})
    assert "remote_image" in assert_fault(r, 400, "badRequest")


async def test_images_page_by_name(api: Api) -> None:
    for n in range(5):
        r = await api.client.post("/canopy/v1/images", json={"name": f"img-{n}"})
        assert r.status_code == 201
    seen: list[str] = []
    url: str | None = "/canopy/v1/images?limit=2"
    while url:
        body = (await api.client.get(url)).json()
        assert len(body["items"]) <= 2
        seen += [i["name"] for i in body["items"]]
        url = body["next"]
    assert seen == sorted(seen) and len(seen) == 7
    r = await api.client.get("/canopy/v1/images?marker=nope")
    assert "marker" in assert_fault(r, 400, "badRequest")
