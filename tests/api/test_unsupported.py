"""What Canopy does not serve is said plainly, in the fault format of the service asked:
405 with the right Allow on a path it serves, 501 for an OpenStack operation it knows it
lacks, 404 for anything else; a route's own 404 is untouched."""

from __future__ import annotations

import re
from typing import Any

import pytest

from .conftest import Api

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def body_of(service: str, r: Any) -> tuple[int, str]:
    """(code, message) from a fault body in the given service's format."""
    body = r.json()
    if service == "identity":
        assert set(body) == {"error"}
        return body["error"]["code"], body["error"]["message"]
    if service == "image":
        assert set(body) == {"message", "code", "title"}
        return int(body["code"].split()[0]), body["message"]
    if service == "reservation":
        assert set(body) == {"error", "error_message"}
        return body["error"], body["error_message"]
    if service == "orchestration":
        assert set(body) == {"code", "title", "explanation", "error"}
        return body["code"], body["error"]["message"]
    (name,) = body
    fault = body[name]
    expected = {404: "itemNotFound", 405: "badMethod", 501: "notImplemented"}[fault["code"]]
    assert name == expected
    return fault["code"], fault["message"]


@pytest.mark.parametrize(
    ("service", "method", "path", "says"),
    [
        ("compute", "GET", "/compute/v2.1/os-hypervisors/detail", "the hypervisor, service"),
        ("compute", "GET", "/compute/v2.1/os-services", "canopy cloud list"),
        ("compute", "POST", "/compute/v2.1/servers/x/os-volume_attachments", "volumes"),
        ("image", "PUT", "/image/v2/images/x/file", "image data"),
        ("image", "GET", "/image/v2/tasks", "this part of Glance"),
        ("identity", "GET", "/identity/v3/groups", "this part of Keystone"),
        ("identity", "GET", "/identity/v3/users/u/access_rules", "access rules"),
    ],
)
async def test_known_openstack_operations_canopy_lacks_are_501(
    api: Api, service: str, method: str, path: str, says: str
) -> None:
    r = await api.client.request(method, path)
    assert r.status_code == 501, r.text
    code, message = body_of(service, r)
    assert code == 501 and says in message and "Canopy does not support" in message


@pytest.mark.parametrize(
    ("service", "path"),
    [
        ("compute", "/compute/v2.1/no-such-thing"),
        ("compute", "/compute/v2.1/servers/x/no-such-thing"),
        ("image", "/image/v2/no-such-thing"),
        ("identity", "/identity/v3/no-such-thing"),
        ("admin", "/canopy/v1/no-such-thing"),
    ],
)
async def test_unknown_paths_are_404_saying_canopy_does_not_serve_them(
    api: Api, service: str, path: str
) -> None:
    r = await api.client.get(path)
    assert r.status_code == 404
    code, message = body_of(service, r)
    assert code == 404
    assert f"Canopy does not serve GET {path}" in message and "/docs" in message


async def test_a_routes_own_404_is_unchanged(api: Api) -> None:
    r = await api.client.get("/compute/v2.1/servers/no-such-server")
    assert r.status_code == 404
    assert r.json()["itemNotFound"]["message"] == "Instance no-such-server could not be found."


async def test_every_documented_path_answers_other_methods_405_with_the_right_allow(
    api: Api,
) -> None:
    spec = (await api.client.get("/openapi.json")).json()
    templates = {
        re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(t)) + "$"): {m.upper() for m in ops}
        for t, ops in spec["paths"].items()
    }
    checked = 0
    for template in spec["paths"]:
        path = re.sub(r"\{[^}]+\}", "x", template)
        # Every documented method at this concrete path (`/servers/detail` is also a
        # `/servers/{server_id}`).
        allowed = set().union(*(ms for rx, ms in templates.items() if rx.match(path)))
        for method in METHODS:
            if method in allowed:
                continue
            r = await api.client.request(method, path)
            assert r.status_code == 405, (method, path, r.status_code, r.text)
            assert set(r.headers["allow"].split(", ")) == allowed, (method, path)
            if method != "HEAD":
                service = (
                    "identity"
                    if path.startswith("/identity")
                    else "image"
                    if path.startswith("/image")
                    else "reservation"
                    if path.startswith("/reservation")
                    else "orchestration"
                    if path.startswith("/orchestration")
                    else "compute"
                )
                code, message = body_of(service, r)
                assert code == 405
                assert f"Canopy does not support {method} on {path}" in message
            checked += 1
    assert checked > 300
