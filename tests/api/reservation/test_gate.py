"""Blazar's blueprint hooks around every v1 route (api/reservation/gate.py): the
microversion (`OpenStack-API-Version: reservation 1.0`, 400/406 in Flask's body) and the
body's Content-Type (Flask's 400 "Content type '...' isn't supported"), as
blazar/api/v1/utils.py has them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx

from canopy.api.reservation.gate import json_accepted, negotiate, requested_version
from tests.api.conftest import Api
from tests.api.reservation.test_leases import V1, _body, blazar_error, flask_error

LEASES = f"{V1}/leases"
VERSION = "openstack-api-version"


def _versioned(r: httpx.Response) -> None:
    assert r.headers[VERSION] == "reservation 1.0", r.headers
    assert r.headers["vary"] == "OpenStack-API-Version", r.headers


def _unversioned(r: httpx.Response) -> None:
    assert VERSION not in r.headers, r.headers


def _lease(api: Api, name: str) -> bytes:
    t0 = api.plane.clock.now()
    body = _body(name, t0 + timedelta(hours=1), t0 + timedelta(hours=2), amount=1)
    return httpx.Request("POST", "http://x", json=body).content


async def _leases(api: Api) -> list[str]:
    return [x["name"] for x in (await api.client.get(LEASES)).json()["leases"]]


async def test_every_route_answer_names_the_version_it_served(api: Api) -> None:
    _versioned(await api.client.get(LEASES))
    _versioned(await api.client.get(f"{V1}/plugins"))
    # Also an error of the route's work (Blazar's after_request hook runs for it).
    r = await api.client.get(f"{LEASES}/{'0' * 32}")
    blazar_error(r, 404)
    _versioned(r)
    for asked in ("reservation 1.0", "reservation latest", "RESERVATION 1.0"):
        _versioned(await api.client.get(LEASES, headers={VERSION: asked}))
    # Other services' versions in the same header are not this service's.
    both = {VERSION: "compute 2.79, reservation 1.0"}
    _versioned(await api.client.get(LEASES, headers=both))
    _versioned(await api.client.get(LEASES, headers={VERSION: "compute 2.79"}))
    # The version document is not a blueprint's route: no header there, as Blazar's.
    r = await api.client.get("/reservation/versions")
    assert r.status_code == 300
    [doc] = r.json()["versions"]
    assert (doc["min_version"], doc["max_version"]) == ("1.0", "1.0")
    _unversioned(r)


# What a client asks, the code, and (part of) Flask's message.
REFUSED_VERSIONS = [
    (
        "reservation 1.1",
        406,
        "Version 1.1 is not supported by the API. Minimum is 1.0 and maximum is 1.0.",
    ),
    ("reservation 2.0", 406, "Version 2.0 is not supported by the API."),
    (
        "reservation 1.01",
        400,
        "API Version String 1.01 is of invalid format. Must be of format MajorNum.MinorNum.",
    ),
    ("reservation one", 400, "API Version String one is of invalid format."),
    # Past int()'s 4,300 digits (a 500 before), and a number no version reaches.
    ("reservation 1" + "0" * 5000 + ".0", 406, "is not supported by the API."),
    ("reservation 1.1000000000", 406, "is not supported by the API."),
    ("reservation LATEST", 400, "is of invalid format"),
]


async def test_a_version_blazar_does_not_serve_is_refused_in_flasks_body(api: Api) -> None:
    for asked, code, words in REFUSED_VERSIONS:
        headers = {VERSION: asked, "Content-Type": "text/plain"}  # the version comes first
        r = await api.client.post(LEASES, content=_lease(api, "v"), headers=headers)
        assert words in flask_error(r, code), asked
        _unversioned(r)
    assert await _leases(api) == []


async def test_the_version_is_checked_only_where_a_route_serves(api: Api) -> None:
    # An unknown path and a method not served are the framework's, whatever the version.
    bad = {VERSION: "reservation 9.9"}
    _unversioned(r := await api.client.get(f"{V1}/nothing", headers=bad))
    flask_error(r, 404)
    flask_error(await api.client.patch(LEASES, headers=bad), 405)
    assert (await api.client.get("/reservation/", headers=bad)).status_code == 300


async def test_a_body_blazar_reads_as_json_creates(api: Api) -> None:
    types = [None, "application/json", "application/json; charset=utf-8", "Application/JSON"]
    for i, content_type in enumerate([*types, "application/*", "*/*"]):
        headers = {} if content_type is None else {"Content-Type": content_type}
        r = await api.client.post(LEASES, content=_lease(api, f"ok{i}"), headers=headers)
        assert r.status_code == 201, (content_type, r.text)
        assert ("content-type" in r.request.headers) is (content_type is not None)
        _versioned(r)


# A Content-Type, and the mimetype Blazar's message names.
REFUSED_TYPES = [
    ("text/plain", "text/plain"),
    ("application/x-www-form-urlencoded; charset=utf-8", "application/x-www-form-urlencoded"),
    ("application/merge-patch+json", "application/merge-patch+json"),
    ("json", "json"),  # no "/": werkzeug raises (Blazar's 500), a 400 here
    ("*/json", "*/json"),
]


async def test_another_content_type_is_flasks_400(api: Api) -> None:
    lease = (await api.client.post(LEASES, content=_lease(api, "y"))).json()["lease"]
    for content_type, shown in REFUSED_TYPES:
        headers = {"Content-Type": content_type}
        r = await api.client.post(LEASES, content=_lease(api, "x"), headers=headers)
        assert flask_error(r, 400) == f"Content type '{shown}' isn't supported"
        _versioned(r)  # refused inside the route's handler, after the version hook
        url = f"{LEASES}/{lease['id']}"
        flask_error(await api.client.put(url, content=b'{"name": "z"}', headers=headers), 400)
    assert await _leases(api) == ["y"]


async def test_an_empty_body_is_not_looked_at(api: Api) -> None:
    # Blazar's request_data returns {} for an empty body whatever its type: the route's
    # own refusal of the empty request follows.
    r = await api.client.post(LEASES, content=b"", headers={"Content-Type": "text/plain"})
    blazar_error(r, 400)


async def test_a_chunked_body_is_judged_by_what_arrives(api: Api) -> None:
    async def chunks(parts: list[bytes]) -> AsyncIterator[bytes]:
        for part in parts:
            yield part

    data = _lease(api, "chunked")
    text = {"Content-Type": "text/plain"}
    r = await api.client.post(LEASES, content=chunks([data[:10], data[10:]]), headers=text)
    assert "content-length" not in r.request.headers
    assert flask_error(r, 400) == "Content type 'text/plain' isn't supported"
    r = await api.client.post(LEASES, content=chunks([data[:10], data[10:]]))
    assert r.status_code == 201, r.text
    blazar_error(await api.client.post(LEASES, content=chunks([]), headers=text), 400)


def test_the_rules_as_blazar_has_them() -> None:
    assert requested_version([]) is None
    assert requested_version(["compute 2.1", "reservation  1.0 "]) == "1.0"
    assert requested_version(["identity 3.0, Reservation latest"]) == "latest"
    assert negotiate(None) == negotiate("latest") == negotiate("1.0") == (1, 0)
    assert [json_accepted(m) for m in ("", "application/json", "*/*", "application/*")] == [
        True
    ] * 4
    assert not any(json_accepted(m) for m in ("text/*", "application/jsonx", "json", "*/json"))
