"""Stack validation knows only the images and keypairs the caller could name, through the
Heat API on both databases: another project's private image and another user's keypair are
refused exactly as missing ones are (same status, same words), by the `glance.image` and
`nova.keypair` custom constraints and by a server's own properties, so a template reveals
nothing of them; the caller's own pass."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from canopy.services import images as image_service
from tests.api.compute.test_keypairs import ssh_public_key
from tests.api.conftest import Api
from tests.api.orchestration.test_stacks import assert_heat_fault
from tests.api.tokens import Caller, caller


async def _image(api: Api, name: str, visibility: str, owner: str) -> None:
    async with api.plane.db.session() as s:
        img = await image_service.register(
            s, name=name, mapping={}, now=api.plane.clock.now(), image_id=str(uuid.uuid4())
        )
        img.visibility, img.owner = visibility, owner


async def _keypair(api: Api, who: Caller, name: str) -> None:
    r = await api.client.post(
        "/compute/v2.1/os-keypairs",
        json={"keypair": {"name": name, "public_key": ssh_public_key()}},
        headers=who.headers,
    )
    assert r.status_code == 200, r.text


def _constrained(param: str, constraint: str, prop: str) -> dict[str, Any]:
    """A server whose `prop` is parameter `param`, checked by `constraint`."""
    props = {"flavor": "m1.small", "image": "cirros", prop: {"get_param": param}}
    return {
        "heat_template_version": "2018-08-31",
        "parameters": {
            param: {"type": "string", "constraints": [{"custom_constraint": constraint}]}
        },
        "resources": {"vm": {"type": "OS::Nova::Server", "properties": props}},
    }


def _direct(**props: str) -> dict[str, Any]:
    return {
        "heat_template_version": "2018-08-31",
        "resources": {
            "vm": {
                "type": "OS::Nova::Server",
                "properties": {"flavor": "m1.small", "image": "cirros", **props},
            }
        },
    }


async def _answers(
    api: Api, who: Caller, template: dict[str, Any], params: dict[str, str]
) -> list[httpx.Response]:
    """What /validate, a preview and a create answer for `template` with `params`."""
    base = f"/orchestration/v1/{who.project_id}"
    body = {"template": template, "parameters": params}
    name = f"s{uuid.uuid4().hex[:8]}"
    return [
        await api.client.post(f"{base}/validate", json=body, headers=who.headers),
        await api.client.post(
            f"{base}/stacks/preview", json={**body, "stack_name": name}, headers=who.headers
        ),
        await api.client.post(
            f"{base}/stacks", json={**body, "stack_name": name}, headers=who.headers
        ),
    ]


async def _same_refusal(
    api: Api, who: Caller, hidden: str, template: Any, params: Any = None
) -> None:
    """`hidden` is refused with the words a missing name gets, at every entry point."""
    missing = f"nothing-{uuid.uuid4().hex[:6]}"
    words: dict[str, list[str]] = {}
    for value in (hidden, missing):
        found = await _answers(api, who, template(value), params(value) if params else {})
        words[value] = [assert_heat_fault(r, 400).replace(value, "X") for r in found]
    assert words[hidden] == words[missing]


@pytest.fixture
async def alice(api: Api) -> Caller:
    return await caller(api.plane.db, api.plane.clock, project="team", user="alice")


async def test_another_projects_private_image_is_unknown(api: Api, alice: Caller) -> None:
    await _image(api, "theirs", "private", "someone-else")
    await _image(api, "their-shared", "shared", "someone-else")
    for hidden in ("theirs", "their-shared"):
        await _same_refusal(
            api, alice, hidden,
            lambda v: _constrained("im", "glance.image", "image"), lambda v: {"im": v},
        )  # fmt: skip
        await _same_refusal(api, alice, hidden, lambda v: _direct(image=v))
    await _image(api, "mine", "private", alice.project_id)
    await _image(api, "everyones", "community", "someone-else")
    for seen in ("mine", "everyones"):
        template = _constrained("im", "glance.image", "image")
        answers = await _answers(api, alice, template, {"im": seen})
        assert [r.status_code for r in answers] == [200, 200, 201], [r.text for r in answers]


async def test_another_users_keypair_is_unknown(api: Api, alice: Caller) -> None:
    bob = await caller(api.plane.db, api.plane.clock, project="team", user="bob")
    await _keypair(api, bob, "bobs-key")
    await _same_refusal(
        api, alice, "bobs-key",
        lambda v: _constrained("key", "nova.keypair", "key_name"), lambda v: {"key": v},
    )  # fmt: skip
    await _same_refusal(api, alice, "bobs-key", lambda v: _direct(key_name=v))
    await _keypair(api, alice, "alices-key")
    template = _constrained("key", "nova.keypair", "key_name")
    answers = await _answers(api, alice, template, {"key": "alices-key"})
    assert [r.status_code for r in answers] == [200, 200, 201], [r.text for r in answers]
