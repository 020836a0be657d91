"""Every error is an OpenStack fault body with a 4xx/5xx code; bad input is never a 500."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import HTTPException

from canopy.api.errors import add_fault_format
from canopy.domain.errors import (
    CanopyError,
    CapacityError,
    CloudError,
    Conflict,
    InvalidRequest,
    NotFound,
    QuotaError,
    TransientError,
    Unsupported,
)

from .conftest import Api, assert_fault

JSON = {"content-type": "application/json"}


async def test_unknown_route_is_item_not_found(api: Api) -> None:
    for path in ("/nope", "/canopy/v1/nope", "/canopy/v2/clouds"):
        r = await api.client.get(path)
        assert_fault(r, 404, "itemNotFound")


async def test_wrong_method_is_bad_method_with_allow(api: Api) -> None:
    r = await api.client.delete("/canopy/v1/clouds")
    assert_fault(r, 405, "badMethod")
    assert r.headers["allow"] == "GET, POST"  # list; add a cloud at run time
    r = await api.client.post("/canopy/v1/images/some-id", json={})
    assert_fault(r, 405, "badMethod")


async def test_malformed_json_is_bad_request(api: Api) -> None:
    for raw in (
        b"{bad",
        b'{"name": "x"',
        b"\x80\x81\x82",
        b"\xff\xfe\x00{",
        b'{"name": "\xc3\x28"}',
    ):
        r = await api.client.post("/canopy/v1/images", content=raw, headers=JSON)
        assert_fault(r, 400, "badRequest")


async def test_malformed_json_message_says_where(api: Api) -> None:
    r = await api.client.post("/canopy/v1/images", content=b'{"name": }', headers=JSON)
    message = assert_fault(r, 400, "badRequest")
    assert "Malformed request body" in message and "9" in message


async def test_wrong_type_names_the_field(api: Api) -> None:
    r = await api.client.post("/canopy/v1/images", json={"name": ["a"], "map": {}})
    message = assert_fault(r, 400, "badRequest")
    assert "field/attribute name" in message
    r = await api.client.get("/canopy/v1/placements?limit=many")
    assert "query parameter limit" in assert_fault(r, 400, "badRequest")


async def test_huge_and_odd_query_values_are_bad_requests(api: Api) -> None:
    for query in ("limit=1000000000000000000000", "limit=-1", "limit=1.5", "marker=%FF%FE"):
        r = await api.client.get(f"/canopy/v1/servers?{query}")
        assert_fault(r, 400, "badRequest")


async def test_a_body_that_is_not_json_is_bad_media_type(api: Api) -> None:
    r = await api.client.post("/canopy/v1/images", data={"name": "x"})
    assert_fault(r, 415, "badMediaType")
    r = await api.client.post(
        "/canopy/v1/images", content=b"name: x", headers={"content-type": "text/yaml"}
    )
    assert_fault(r, 415, "badMediaType")


async def test_missing_body_is_bad_request(api: Api) -> None:
    r = await api.client.post("/canopy/v1/images", headers=JSON)
    assert "body is missing" in assert_fault(r, 400, "badRequest")


async def test_a_huge_body_is_over_limit(api: Api) -> None:
    huge = b'{"name": "' + b"x" * (2 << 20) + b'"}'
    r = await api.client.post("/canopy/v1/images", content=huge, headers=JSON)
    assert_fault(r, 413, "overLimit")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit counts bytes
        for _ in range(40):
            yield b"x" * 65536

    r = await api.client.post("/canopy/v1/images", content=chunks(), headers=JSON)
    assert_fault(r, 413, "overLimit")


@pytest.mark.parametrize(
    ("exc", "code", "name"),
    [
        (InvalidRequest("bad thing"), 400, "badRequest"),
        (NotFound("no thing"), 404, "itemNotFound"),
        (Conflict("busy thing"), 409, "conflictingRequest"),
        (QuotaError("too many things"), 403, "forbidden"),
        (Unsupported("cannot do that", cloud="c"), 501, "notImplemented"),
        (CapacityError("full", cloud="c"), 503, "serviceUnavailable"),
        (TransientError("try later", cloud="c"), 503, "serviceUnavailable"),
        (CloudError("cloud says no", cloud="c"), 503, "serviceUnavailable"),
        (HTTPException(401, "who are you"), 401, "unauthorized"),
        (HTTPException(429, "slow down"), 429, "overLimit"),
        (HTTPException(418, "teapot"), 418, "computeFault"),
    ],
)
async def test_errors_map_to_faults(api: Api, exc: Exception, code: int, name: str) -> None:
    async def boom() -> None:
        raise exc

    api.app.add_api_route("/boom", boom)
    r = await api.client.get("/boom")
    assert assert_fault(r, code, name) == str(exc.detail if isinstance(exc, HTTPException) else exc)


async def test_an_unexpected_exception_is_a_logged_generic_500(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    async def bug() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    async def base_error() -> None:
        raise CanopyError("raised on purpose but unmapped")

    api.app.add_api_route("/bug", bug)
    api.app.add_api_route("/base", base_error)
    with caplog.at_level(logging.ERROR, logger="canopy.api.errors"):
        r = await api.client.get("/bug")
    message = assert_fault(r, 500, "computeFault")
    assert "hunter2" not in message and "RuntimeError" not in message
    assert any("unexpected error on GET /bug" in rec.getMessage() for rec in caplog.records)
    assert any(rec.exc_info for rec in caplog.records)
    r = await api.client.get("/base")
    assert "unmapped" not in assert_fault(r, 500, "computeFault")


async def test_a_service_can_use_its_own_fault_format(api: Api) -> None:
    add_fault_format(
        api.app,
        "/identity/v3",
        lambda code, message: {"error": {"code": code, "message": message, "title": "Error"}},
    )
    r = await api.client.get("/identity/v3/nothing-here")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == 404
    assert_fault(await api.client.get("/canopy/v1/nope"), 404, "itemNotFound")


async def test_garbage_in_paths_and_queries_is_never_a_5xx(api: Api) -> None:
    paths = [
        "/canopy/v1/clouds/%FF",
        "/canopy/v1/servers/%00/placements",
        "/canopy/v1/servers/" + "x" * 5000,
        "/canopy/v1/images/%C3%28",
        "/canopy/v1/placements?server_id=%00",
        "/canopy/v1/servers?cloud=%00",
        "/canopy/v1/servers?project_id=%00",
    ]
    for path in paths:
        r = await api.client.get(path)
        assert r.status_code < 500, (path, r.text)
        if r.status_code >= 400:
            assert list(r.json()) in (["badRequest"], ["itemNotFound"]), (path, r.text)
        else:
            assert r.json()["items"] == [], path


async def test_errors_are_json_even_for_plain_clients(api: Api) -> None:
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=api.app), base_url="http://x")
    async with client:
        r = await client.get("/nope", headers={"accept": "text/html"})
    assert_fault(r, 404, "itemNotFound")


async def test_an_error_message_that_cannot_be_encoded_is_escaped_not_a_500(api: Api) -> None:
    async def echo() -> None:
        raise InvalidRequest("Invalid input for field/attribute name. Value: x\ud800.")

    api.app.add_api_route("/echo", echo)
    r = await api.client.get("/echo")
    assert assert_fault(r, 400, "badRequest").endswith("Value: x\\ud800.")
