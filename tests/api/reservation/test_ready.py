"""Canopy's `servers` extension of a lease create, over HTTP: accepted, shown, refused."""

from __future__ import annotations

import uuid
from datetime import timedelta

from canopy.services import images as image_service
from tests.api.conftest import Api
from tests.api.tokens import caller

from .test_leases import V1, _body, blazar_error


async def test_a_lease_carrying_servers_says_when_they_boot(api: Api) -> None:
    start = api.plane.clock.now() + timedelta(hours=1)
    body = _body("carry", start, start + timedelta(hours=1))
    body["servers"] = [{"name": "web", "image": "cirros", "count": 2, "user_data": "aGk="}]
    r = await api.client.post(f"{V1}/leases", json=body)
    assert r.status_code == 201, r.text
    shown = r.json()["lease"]["servers"]
    lead = shown["boot_lead_seconds"]
    assert lead > 0 and shown["booted_at"] is None and shown["ready_on_time"] is None
    assert [(s["name"], s["count"], s["ids"]) for s in shown["servers"]] == [("web", 2, [])]
    lease_id = r.json()["lease"]["id"]
    r = await api.client.get(f"{V1}/leases/{lease_id}")
    assert r.json()["lease"]["servers"]["boot_at"] == shown["boot_at"]

    # What Blazar's clients send has no servers, and its leases show none.
    r = await api.client.post(
        f"{V1}/leases", json=_body("plain", start, start + timedelta(hours=1))
    )
    assert r.status_code == 201 and "servers" not in r.json()["lease"]

    body = _body("bad", start, start + timedelta(hours=1))
    body["servers"] = [{"name": "web", "image": "no-such-image"}]
    assert "image 'no-such-image' not found" in blazar_error(
        await api.client.post(f"{V1}/leases", json=body), 400
    )
    r = await api.client.get(f"{V1}/leases")
    assert sorted(x["name"] for x in r.json()["leases"]) == ["carry", "plain"]


async def test_a_lease_carries_only_images_its_project_can_see(api: Api) -> None:
    alice = await caller(api.plane.db, api.plane.clock, project="team", user="alice")
    async with api.plane.db.session() as s:
        for name, owner in (("theirs", "someone-else"), ("mine", alice.project_id)):
            img = await image_service.register(
                s, name=name, mapping={}, now=api.plane.clock.now(), image_id=str(uuid.uuid4())
            )
            img.visibility, img.owner = "private", owner
    start = api.plane.clock.now() + timedelta(hours=1)
    for image, status in (("theirs", 400), ("no-such-image", 400), ("mine", 201)):
        body = _body(f"carry-{image}", start, start + timedelta(hours=1))
        body["servers"] = [{"name": "web", "image": image}]
        r = await api.client.post(f"{V1}/leases", json=body, headers=alice.headers)
        if status == 400:
            assert f"image {image!r} not found" in blazar_error(r, 400)
        else:
            assert r.status_code == status, r.text
