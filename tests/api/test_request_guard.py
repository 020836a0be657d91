"""Before any handler, parser or token check: a body over its service's limit is a 413,
and text that is not valid Unicode (a lone surrogate, bytes that are not UTF-8) is a 400,
each in the fault format of the service that owns the path. Never a 500."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from .conftest import Api

JSON = {"content-type": "application/json"}
LONE = "x\ud800"  # json.dumps writes it as the escape "x\ud800", as a client would send it


def keystone(r: httpx.Response, code: int) -> str:
    body = r.json()
    assert list(body) == ["error"], body
    assert body["error"]["code"] == code and body["error"]["title"]
    message: str = body["error"]["message"]
    return message


def nova(r: httpx.Response, code: int) -> str:
    name = {400: "badRequest", 413: "overLimit"}[code]
    body = r.json()
    assert list(body) == [name], body
    assert body[name]["code"] == code
    message: str = body[name]["message"]
    return message


def glance(r: httpx.Response, code: int) -> str:
    body = r.json()
    assert set(body) == {"message", "code", "title"}, body
    assert body["code"].startswith(f"{code} ")
    message: str = body["message"]
    return message


Format = Callable[[httpx.Response, int], str]

# One write path per service, and its fault format; none needs a token to be refused.
SERVICES: list[tuple[str, Format]] = [
    ("/identity/v3/auth/tokens", keystone),
    ("/compute/v2.1/servers", nova),
    ("/image/v2/images", glance),
    ("/canopy/v1/images", nova),
]
IDS = ["identity", "compute", "image", "admin"]


def fault(r: httpx.Response, fmt: Format, code: int) -> str:
    assert r.status_code == code, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers.get("x-openstack-request-id", "").startswith("req-")
    return fmt(r, code)


def padded(size: int) -> bytes:
    """A JSON object of exactly `size` bytes."""
    head, tail = b'{"pad": "', b'"}'
    return head + b"a" * (size - len(head) - len(tail)) + tail


def _limit(api: Api, path: str) -> int:
    settings = api.plane.settings.api
    return (
        settings.max_identity_body_bytes
        if path.startswith("/identity")
        else (settings.max_body_bytes)
    )


@pytest.mark.parametrize(("path", "fmt"), SERVICES, ids=IDS)
async def test_a_body_over_the_limit_is_413_before_auth(api: Api, path: str, fmt: Format) -> None:
    limit = _limit(api, path)
    anon = {"X-Auth-Token": ""}
    r = await api.client.post(path, content=padded(limit + 1), headers={**JSON, **anon})
    assert f"at most {limit} bytes" in fault(r, fmt, 413)
    r = await api.client.post(path, content=padded(limit), headers={**JSON, **anon})
    assert r.status_code != 413 and r.status_code < 500, r.text  # at the limit: read on


def test_identity_is_smaller_by_default(api: Api) -> None:
    assert api.plane.settings.api.max_identity_body_bytes == 64 << 10
    assert api.plane.settings.api.max_body_bytes == 1 << 20


@pytest.mark.parametrize(("path", "fmt"), SERVICES, ids=IDS)
async def test_the_limits_come_from_the_config(api: Api, path: str, fmt: Format) -> None:
    api.plane.settings.api.max_body_bytes = 2048
    api.plane.settings.api.max_identity_body_bytes = 1024
    r = await api.client.post(path, content=padded(_limit(api, path) + 1), headers=JSON)
    fault(r, fmt, 413)


@pytest.mark.parametrize(("path", "fmt"), SERVICES, ids=IDS)
async def test_a_100_mb_body_is_refused_without_being_read_whole(
    api: Api, path: str, fmt: Format
) -> None:
    chunk = 1 << 20
    pulled = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(100):
            pulled += 1
            yield b"a" * chunk

    # Chunked (no Content-Length): counted as it arrives, refused just past the limit.
    r = await api.client.post(path, content=body(), headers=JSON)
    fault(r, fmt, 413)
    assert pulled <= _limit(api, path) // chunk + 1
    # Declared: refused before a byte of the body is read.
    pulled = 0
    declared = {**JSON, "content-length": str(100 * chunk)}
    r = await api.client.post(path, content=body(), headers=declared)
    fault(r, fmt, 413)
    assert r.headers["connection"] == "close"
    assert pulled == 0


@pytest.mark.parametrize(("path", "fmt"), SERVICES, ids=IDS)
async def test_a_body_framed_two_ways_is_a_400_and_the_connection_closes(
    api: Api, path: str, fmt: Format
) -> None:
    """Content-Length beside Transfer-Encoding: refused, and the connection closed after
    the answer (RFC 9112, 6.3), before any handler or token check. A real server's
    connection is checked in tests/cli/test_up.py."""
    r = await api.client.post(
        path,
        content=b'{"a": 1}',
        headers={**JSON, "content-length": "8", "transfer-encoding": "chunked"},
    )
    assert "Content-Length and a Transfer-Encoding" in fault(r, fmt, 400)
    assert r.headers["connection"] == "close"
    # Either alone is one framing, as ever.
    r = await api.client.post(path, content=b'{"a": 1}', headers=JSON)
    assert r.status_code != 400 or "Transfer-Encoding" not in r.text


def _with_lone_surrogate(doc: Any) -> bytes:
    text = json.dumps(doc)  # ensure_ascii: the lone surrogate becomes the escape \ud800
    assert "\\ud800" in text
    return text.encode("ascii")


SURROGATE_BODIES: list[tuple[str, Any, Format]] = [
    ("/compute/v2.1/servers", {"server": {"name": LONE, "flavorRef": "1"}}, nova),
    ("/compute/v2.1/servers", {"server": {"name": "x", "metadata": {LONE: "v"}}}, nova),
    ("/compute/v2.1/os-keypairs", {"keypair": {"name": LONE}}, nova),
    ("/compute/v2.1/os-server-groups", {"server_group": {"name": LONE}}, nova),
    ("/identity/v3/projects", {"project": {"name": LONE}}, keystone),
    ("/identity/v3/users", {"user": {"name": "u", "password": LONE}}, keystone),
    ("/canopy/v1/images", {"name": LONE, "map": {}}, nova),
    ("/image/v2/images", {"name": LONE}, glance),
]


@pytest.mark.parametrize(("path", "doc", "fmt"), SURROGATE_BODIES)
async def test_a_lone_surrogate_in_a_json_body_is_a_400(
    api: Api, path: str, doc: Any, fmt: Format
) -> None:
    r = await api.client.post(path, content=_with_lone_surrogate(doc), headers=JSON)
    assert "lone surrogate" in fault(r, fmt, 400)


@pytest.mark.parametrize("where", ["name", "password"])
async def test_a_lone_surrogate_in_an_unauthenticated_token_request_is_a_400(
    api: Api, where: str
) -> None:
    user = {"name": "admin", "domain": {"name": "Default"}, "password": "pw"}
    user[where] = LONE
    doc = {"auth": {"identity": {"methods": ["password"], "password": {"user": user}}}}
    r = await api.client.post(
        "/identity/v3/auth/tokens", content=_with_lone_surrogate(doc), headers=JSON
    )
    message = keystone(r, 400)
    assert r.status_code == 400
    assert f"auth.identity.password.user.{where}" in message


async def test_utf8_encoded_surrogates_and_other_bad_bytes_are_a_400(api: Api) -> None:
    for raw in (b'{"name": "x\xed\xa0\x80"}', b'{"name": "\xff"}', b"\xfe\xff\x00{\x00}"):
        r = await api.client.post("/canopy/v1/images", content=raw, headers=JSON)
        assert "not valid UTF-8" in fault(r, nova, 400)


async def test_paired_surrogates_and_escaped_backslashes_are_ordinary_text(api: Api) -> None:
    # An emoji written as a surrogate pair (how json.dumps writes it) and the six
    # characters \ud800 after an escaped backslash are valid: the guard lets them through.
    doc = {"server": {"name": "vm \U0001f600 \\ud800", "flavorRef": "1", "imageRef": "cirros"}}
    text = json.dumps({**doc, "server": {**doc["server"], "networks": "none"}})
    assert "\\ud83d\\ude00" in text and "\\\\ud800" in text
    r = await api.client.post(
        "/compute/v2.1/servers",
        content=text.encode("ascii"),
        headers={**JSON, "OpenStack-API-Version": "compute 2.79"},
    )
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    r = await api.client.get(f"/compute/v2.1/servers/{sid}")
    assert r.json()["server"]["name"] == "vm \U0001f600 \\ud800"


@pytest.mark.parametrize(
    ("url", "fmt"),
    [
        ("/compute/v2.1/servers?name=%ED%A0%80", nova),
        ("/compute/v2.1/servers/detail?ip=1&name=x%FF", nova),
        ("/compute/v2.1/servers/%ED%A0%80", nova),
        ("/compute/v2.1/os-keypairs/k%ED%A0%80", nova),
        ("/identity/v3/users?name=%ED%A0%80", keystone),
        ("/identity/v3/projects/%ED%A0%80", keystone),
        ("/image/v2/images?name=%ED%A0%80", glance),
        ("/image/v2/images/%ED%A0%80", glance),
        ("/canopy/v1/servers?cloud=%ED%A0%80", nova),
        ("/canopy/v1/clouds/%ED%A0%80", nova),
        ("/compute/v2.1/servers?%ED%A0%80=1", nova),
    ],
)
async def test_a_query_value_or_path_segment_that_is_not_utf8_is_a_400(
    api: Api, url: str, fmt: Format
) -> None:
    r = await api.client.get(url)
    assert "not valid UTF-8" in fault(r, fmt, 400)


async def test_a_header_the_services_read_must_be_utf8(api: Api) -> None:
    for name in ("X-Auth-Token", "OpenStack-API-Version", "X-OpenStack-Nova-API-Version"):
        r = await api.client.get("/compute/v2.1/servers", headers={name: b"\xed\xa0\x80"})
        assert name in fault(r, nova, 400)
    r = await api.client.get("/identity/v3/auth/tokens", headers={"X-Subject-Token": b"\xff"})
    assert "X-Subject-Token" in fault(r, keystone, 400)


# NUL characters: valid Unicode, but no PostgreSQL text column can hold one ---------------

NUL = "x\x00y"

NUL_BODIES: list[tuple[str, Any, Format, str]] = [
    ("/identity/v3/projects", {"project": {"name": NUL}}, keystone, "project.name"),
    ("/identity/v3/projects", {"project": {"name": "p", "description": NUL}}, keystone, ""),
    ("/identity/v3/users", {"user": {"name": NUL, "password": "pw"}}, keystone, "user.name"),
    ("/identity/v3/users", {"user": {"name": "u", "email": NUL}}, keystone, "user.email"),
    ("/compute/v2.1/servers", {"server": {"name": NUL, "flavorRef": "1"}}, nova, "server.name"),
    ("/canopy/v1/images", {"name": "i", "map": {NUL: "x"}}, nova, ""),
]


@pytest.mark.parametrize(("path", "doc", "fmt", "where"), NUL_BODIES)
async def test_a_nul_character_in_a_json_body_is_a_400_on_every_database(
    api: Api, path: str, doc: Any, fmt: Format, where: str
) -> None:
    text = json.dumps(doc)
    assert "\\u0000" in text
    r = await api.client.post(path, content=text.encode(), headers=JSON)
    message = fault(r, fmt, 400)
    assert "NUL" in message
    assert where in message


async def test_a_nul_character_in_an_unauthenticated_token_request_is_a_400(api: Api) -> None:
    user = {"name": NUL, "domain": {"name": "Default"}, "password": "pw"}
    doc = {"auth": {"identity": {"methods": ["password"], "password": {"user": user}}}}
    r = await api.client.post("/identity/v3/auth/tokens", content=json.dumps(doc), headers=JSON)
    assert "auth.identity.password.user.name" in keystone(r, 400)


async def test_an_escaped_backslash_before_u0000_is_ordinary_text(api: Api) -> None:
    doc = {"project": {"name": "p", "description": "C:\\u0000"}}
    text = json.dumps(doc)
    assert "\\\\u0000" in text
    r = await api.client.post("/identity/v3/projects", content=text.encode(), headers=JSON)
    assert r.status_code == 201, r.text
    assert r.json()["project"]["description"] == "C:\\u0000"


@pytest.mark.parametrize(
    "url",
    [
        "/identity/v3/projects/x%00y",
        "/identity/v3/users/x%00y",
        "/identity/v3/projects?name=x%00y",
        "/identity/v3/users?name=x%00y",
    ],
)
async def test_a_nul_character_in_an_identity_path_or_query_is_never_a_500(
    api: Api, url: str
) -> None:
    r = await api.client.get(url)
    assert r.status_code in (200, 400, 404), r.text
    if r.status_code == 200:
        assert not next(iter(r.json().values()))  # a filter no stored name can match
    else:
        keystone(r, r.status_code)
