"""Glance v2 at /image: version documents, images by id and by query, schemas, faults."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from canopy.services import images as image_service
from canopy.store.models import Image
from tests.api.conftest import Api
from tests.api.tokens import Caller, caller

CIRROS = "6e6d3a0e-4c4b-4f3e-9a57-0c1b5b1e2a01"
UBUNTU = "3b1c2f4e-8d6a-4c7e-b0a2-5f9d8e7c6b02"
IMAGE_FIELDS = {
    "id",
    "name",
    "status",
    "visibility",
    "protected",
    "os_hidden",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "owner",
    "size",
    "virtual_size",
    "container_format",
    "disk_format",
    "min_disk",
    "min_ram",
    "created_at",
    "updated_at",
    "tags",
    "self",
    "file",
    "schema",
}


@pytest.fixture
async def alice(api: Api) -> Caller:
    return await caller(api.plane.db, api.plane.clock, project="team", user="alice")


def glance_fault(r: httpx.Response, code: int) -> str:
    """The response is Glance's error body with this code; its message."""
    assert r.status_code == code, r.text
    body = r.json()
    assert set(body) == {"message", "code", "title"}, body
    assert body["code"].startswith(f"{code} ")
    assert body["message"]
    return str(body["message"])


async def register(api: Api, name: str, **kw: Any) -> Image:
    async with api.plane.db.session() as s:
        img = await image_service.register(
            s, name=name, mapping={}, now=api.plane.clock.now(), **kw
        )
    api.plane.clock.advance(1)
    return img


async def names(api: Api, who: Caller, query: str = "") -> list[str]:
    r = await api.client.get(f"/image/v2/images{query}", headers=who.headers)
    assert r.status_code == 200, r.text
    return [i["name"] for i in r.json()["images"]]


async def test_version_documents_need_no_token(api: Api) -> None:
    for path, status in (
        ("/image", 300),
        ("/image/", 300),
        ("/image/versions", 200),
        ("/image/v2", 200),
        ("/image/v2/", 200),
    ):
        r = await api.client.get(path, headers={"X-Auth-Token": ""})
        assert r.status_code == status, path
        versions = r.json()["versions"]
        current = [v for v in versions if v["status"] == "CURRENT"]
        assert [v["id"] for v in current] == ["v2.7"]
        assert {v["id"] for v in versions} >= {"v2.0", "v2.1", "v2.7"}
        assert current[0]["links"] == [{"rel": "self", "href": "http://canopy.test/image/v2/"}]


async def test_show_an_image(api: Api, alice: Caller) -> None:
    r = await api.client.get(f"/image/v2/images/{CIRROS}", headers=alice.headers)
    assert r.status_code == 200
    img = r.json()
    assert set(img) == IMAGE_FIELDS  # members see no canopy extras
    assert img["id"] == CIRROS and img["name"] == "cirros"
    assert img["status"] == "active" and img["visibility"] == "public"
    assert img["protected"] is False and img["os_hidden"] is False and img["tags"] == []
    assert img["self"] == f"/v2/images/{CIRROS}" and img["file"] == f"/v2/images/{CIRROS}/file"
    assert img["schema"] == "/v2/schemas/image"
    assert img["created_at"].endswith("Z") and "T" in img["created_at"]


async def test_admins_see_where_an_image_boots(api: Api) -> None:
    async with api.plane.db.session() as s:
        await image_service.register(
            s, name="debian", mapping={"public": "img-deb"}, now=api.plane.clock.now()
        )
    r = await api.client.get("/image/v2/images?name=debian")
    [img] = r.json()["images"]
    assert img["canopy_locations"] == [
        {"cloud": "private", "remote_image": img["id"], "implicit": True},
        {"cloud": "public", "remote_image": "img-deb", "implicit": False},
    ]
    shown = (await api.client.get(f"/image/v2/images/{img['id']}")).json()
    assert shown["canopy_locations"] == img["canopy_locations"]


async def test_unknown_image_is_a_glance_404(api: Api, alice: Caller) -> None:
    for ref in ("cirros", str(uuid.uuid4()), "x" * 300):
        r = await api.client.get(f"/image/v2/images/{ref}", headers=alice.headers)
        assert "No image found" in glance_fault(r, 404)
    r = await api.client.get("/image/v2/nothing-here", headers=alice.headers)
    glance_fault(r, 404)


async def test_a_token_is_required(api: Api) -> None:
    for path in ("/image/v2/images", f"/image/v2/images/{CIRROS}", "/image/v2/schemas/image"):
        r = await api.client.get(path, headers={"X-Auth-Token": "wrong"})
        glance_fault(r, 401)


async def test_list_with_no_filter_as_ansible_does(api: Api, alice: Caller) -> None:
    r = await api.client.get("/image/v2/images", headers=alice.headers)
    body = r.json()
    assert body["first"] == "/v2/images" and body["schema"] == "/v2/schemas/images"
    assert "next" not in body
    assert sorted(i["name"] for i in body["images"]) == ["cirros", "ubuntu-24.04"]
    assert all(set(i) == IMAGE_FIELDS for i in body["images"])


async def test_filters(api: Api, alice: Caller) -> None:
    await register(api, "alpine")
    await register(api, "with,comma")
    assert await names(api, alice, "?name=cirros") == ["cirros"]
    assert await names(api, alice, "?name=nope") == []
    assert await names(api, alice, f"?id={CIRROS}") == ["cirros"]
    # What `openstack server list` sends to name the images of its servers.
    q = f"?id=in%3A{CIRROS}%2C{UBUNTU}&sort=name:asc"
    assert await names(api, alice, q) == ["cirros", "ubuntu-24.04"]
    assert await names(api, alice, f'?id=in:"{CIRROS}"') == ["cirros"]
    assert await names(api, alice, '?name=in:"with,comma",alpine&sort=name:asc') == [
        "alpine",
        "with,comma",
    ]
    assert await names(api, alice, "?name=eq:alpine") == ["alpine"]
    assert await names(api, alice, "?status=active&sort=name") == [
        "with,comma",
        "ubuntu-24.04",
        "cirros",
        "alpine",
    ]
    assert await names(api, alice, "?status=queued") == []
    assert await names(api, alice, "?visibility=public&sort=name:asc") == [
        "alpine",
        "cirros",
        "ubuntu-24.04",
        "with,comma",
    ]
    assert await names(api, alice, "?visibility=private") == []
    assert len(await names(api, alice, "?visibility=all")) == 4
    assert len(await names(api, alice, "?os_hidden=false&member_status=all")) == 4
    assert await names(api, alice, "?os_hidden=true") == []
    assert await names(api, alice, "?protected=true") == []
    assert await names(api, alice, "?tag=x") == []
    assert await names(api, alice, "?size_min=1") == []
    assert await names(api, alice, "?architecture=x86_64") == []  # an image property
    assert await names(api, alice, "?disk_format=qcow2&container_format=bare&sort=name:asc") == [
        "alpine",
        "cirros",
        "ubuntu-24.04",
        "with,comma",
    ]


async def test_time_filters(api: Api, alice: Caller) -> None:
    api.plane.clock.advance(10)  # past the seeded images' creation
    start = api.plane.clock.now()
    await register(api, "late")
    at = start.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert await names(api, alice, f"?created_at=gte:{at}") == ["late"]
    assert sorted(await names(api, alice, f"?created_at=lt:{at}")) == ["cirros", "ubuntu-24.04"]
    assert len(await names(api, alice, f"?updated_at=neq:{at}")) == 2
    r = await api.client.get("/image/v2/images?created_at=gte:yesterday", headers=alice.headers)
    assert "ISO 8601" in glance_fault(r, 400)


async def test_sorting(api: Api, alice: Caller) -> None:
    await register(api, "b")
    await register(api, "a")
    assert await names(api, alice, "?name=in:a,b") == ["a", "b"]  # newest first by default
    assert await names(api, alice, "?name=in:a,b&sort=created_at:asc") == ["b", "a"]
    assert await names(api, alice, "?name=in:a,b&sort_key=name&sort_dir=asc") == ["a", "b"]
    assert await names(api, alice, "?name=in:a,b&sort_key=name") == ["b", "a"]
    assert await names(api, alice, "?name=in:a,b&sort=size,name:asc") == ["a", "b"]


async def test_paging_follows_next_links(api: Api, alice: Caller) -> None:
    for n in range(30):
        await register(api, f"img-{n:02d}")
    seen: list[str] = []
    url: str | None = "/v2/images?sort=name:asc"
    pages = 0
    while url:
        r = await api.client.get("/image" + url, headers=alice.headers)
        body = r.json()
        pages += 1
        assert len(body["images"]) <= 25
        seen += [i["name"] for i in body["images"]]
        url = body.get("next")
    assert pages == 2 and len(seen) == 32 and seen == sorted(seen)

    seen = []
    url = "/v2/images?limit=7"
    while url:
        body = (await api.client.get("/image" + url, headers=alice.headers)).json()
        seen += [i["name"] for i in body["images"]]
        assert "marker" not in body["first"]
        url = body.get("next")
    assert len(seen) == len(set(seen)) == 32
    assert seen[0] == "img-29"  # newest first

    r = await api.client.get("/image/v2/images?limit=0", headers=alice.headers)
    assert r.json()["images"] == [] and "next" not in r.json()
    r = await api.client.get("/image/v2/images?limit=5000", headers=alice.headers)
    assert len(r.json()["images"]) == 32


async def test_bad_queries_are_glance_400s(api: Api, alice: Caller) -> None:
    for query, words in (
        ("?limit=x", "integer"),
        ("?limit=-1", "positive"),
        ("?marker=nope", "nope"),
        (f"?marker={uuid.uuid4()}", "Marker"),
        ("?sort=colour", "Invalid sort key"),
        ("?sort=name:up", "Invalid sort direction"),
        ("?sort=name&sort_key=name", "cannot be combined"),
        ("?sort_key=name&sort_key=id&sort_dir=asc&sort_dir=desc&sort_dir=asc", "sort dirs"),
        ("?visibility=everyone", "visibility"),
        ("?os_hidden=maybe", "os_hidden"),
        ("?member_status=fine", "Invalid status"),
        ("?changes-since=2020-01-01", "changes-since"),
        ('?name=in:"unclosed', "not closed"),
        ('?name=in:"a"b', "no comma after"),
        ('?name=in:a"b"', "no comma before"),
        ("?name=like:a", "unknown operator"),
        ("?size_min=big", "non-numeric"),
    ):
        r = await api.client.get(f"/image/v2/images{query}", headers=alice.headers)
        assert words in glance_fault(r, 400), query


async def test_marker_pages_after_the_image(api: Api, alice: Caller) -> None:
    body = (
        await api.client.get("/image/v2/images?sort=name:asc&limit=1", headers=alice.headers)
    ).json()
    assert [i["name"] for i in body["images"]] == ["cirros"]
    assert body["next"] == f"/v2/images?sort=name%3Aasc&limit=1&marker={CIRROS}"
    assert body["first"] == "/v2/images?sort=name%3Aasc&limit=1"
    r = await api.client.get(
        f"/image/v2/images?sort=name:asc&marker={CIRROS}", headers=alice.headers
    )
    assert [i["name"] for i in r.json()["images"]] == ["ubuntu-24.04"]


async def test_private_images_of_other_projects_are_hidden(api: Api, alice: Caller) -> None:
    async with api.plane.db.session() as s:
        for name, owner in (("mine", alice.project_id), ("theirs", "someone-else")):
            img = await image_service.register(s, name=name, mapping={}, now=api.plane.clock.now())
            img.visibility, img.owner = "private", owner
    assert sorted(await names(api, alice)) == ["cirros", "mine", "ubuntu-24.04"]
    assert await names(api, alice, "?visibility=private") == ["mine"]
    assert "theirs" not in await names(api, alice, "?visibility=all")
    theirs = (await api.client.get("/image/v2/images?name=theirs")).json()["images"]
    assert len(theirs) == 1  # the admin sees every image
    r = await api.client.get(f"/image/v2/images/{theirs[0]['id']}", headers=alice.headers)
    glance_fault(r, 404)


async def test_schemas(api: Api, alice: Caller) -> None:
    r = await api.client.get("/image/v2/schemas/image", headers=alice.headers)
    schema = r.json()
    assert schema["name"] == "image"
    assert set(schema["properties"]) >= IMAGE_FIELDS
    assert schema["additionalProperties"] == {"type": "string"}
    assert {link["rel"] for link in schema["links"]} == {"self", "enclosure", "describedby"}
    r = await api.client.get("/image/v2/schemas/images", headers=alice.headers)
    images = r.json()
    assert images["name"] == "images"
    assert images["properties"]["images"]["items"]["name"] == "image"


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
    "null": (type(None),),
}


def _type_ok(value: Any, declared: str | list[str]) -> bool:
    kinds = [declared] if isinstance(declared, str) else declared
    return any(
        isinstance(value, _JSON_TYPES[k]) and not (k == "integer" and isinstance(value, bool))
        for k in kinds
    )


async def test_responses_match_the_published_schema(api: Api, alice: Caller) -> None:
    """Every field of every image has the type the image schema declares (or is a string
    extra property), and enum fields hold an allowed value."""
    schema = (await api.client.get("/image/v2/schemas/image", headers=alice.headers)).json()
    props = schema["properties"]
    for who in ({}, alice.headers):  # admin (with canopy_locations) and member
        body = (await api.client.get("/image/v2/images", headers=who)).json()
        for img in body["images"]:
            for key, value in img.items():
                spec = props.get(key, schema["additionalProperties"])
                assert _type_ok(value, spec["type"]), (key, value)
                if "enum" in spec:
                    assert value in spec["enum"], (key, value)


async def test_nul_characters_are_refused_not_crashed(api: Api, alice: Caller) -> None:
    for query in ("?name=a%00b", "?owner=a%00b", "?id=in:a%00b,c", "?status=a%00b"):
        assert await names(api, alice, query) == []
    r = await api.client.get("/image/v2/images?marker=a%00b", headers=alice.headers)
    glance_fault(r, 400)
    r = await api.client.get("/image/v2/images/a%00b", headers=alice.headers)
    glance_fault(r, 404)
