"""A boot names only an image its project can see (Glance's visibility), through the real
Nova front door on both databases: another project's private or shared image is answered
exactly as a missing one (400 "Image ... could not be found."), so a boot reveals nothing
of it; a public, community or own image boots."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from canopy.services import images as image_service
from tests.api.compute.helpers import V21, Who, server_body, who
from tests.api.conftest import Api


async def _image(api: Api, name: str, visibility: str, owner: str | None) -> str:
    async with api.plane.db.session() as s:
        img = await image_service.register(
            s, name=name, mapping={}, now=api.plane.clock.now(), image_id=str(uuid.uuid4())
        )
        img.visibility, img.owner = visibility, owner
        return img.id


async def _boot(api: Api, w: Who, image_ref: str) -> tuple[int, Any]:
    body = server_body("vm", imageRef=image_ref, networks="none")
    r = await api.client.post(f"{V21}/servers", headers=w.h("2.79"), json=body)
    return r.status_code, r.json()


@pytest.mark.parametrize("visibility", ["private", "shared"])
async def test_another_projects_image_is_answered_as_a_missing_one(
    api: Api, visibility: str
) -> None:
    alice = await who(api)
    other = await who(api, project="other", user="olga")
    theirs = await _image(api, "theirs", visibility, other.project_id)
    missing = str(uuid.uuid4())
    for ref, shown in ((theirs, theirs), ("theirs", "theirs")):
        status, body = await _boot(api, alice, ref)
        assert status == 400, body
        assert body == {
            "badRequest": {"code": 400, "message": f"Image {shown} could not be found."}
        }
    status, body = await _boot(api, alice, missing)
    assert (status, body["badRequest"]["message"]) == (400, f"Image {missing} could not be found.")
    # Its owner boots it, by id and by name.
    for ref in (theirs, "theirs"):
        status, body = await _boot(api, other, ref)
        assert status == 202, body


async def test_public_community_and_own_images_boot(api: Api) -> None:
    alice = await who(api)
    own = await _image(api, "own-private", "private", alice.project_id)
    community = await _image(api, "community-one", "community", "someone-else")
    public = await _image(api, "public-one", "public", "someone-else")
    for ref in (own, community, public, "own-private", "community-one"):
        status, body = await _boot(api, alice, ref)
        assert status == 202, (ref, body)


async def test_a_cloud_admin_boots_any_image(api: Api) -> None:
    theirs = await _image(api, "theirs", "private", "someone-else")
    admin = Who(api.admin.token, api.admin.project_id, api.admin.user_id)
    status, body = await _boot(api, admin, theirs)
    assert status == 202, body
