"""Blazar's two error bodies under /reservation, each for the errors Blazar gives it
(api/reservation/faults.py): Flask's `{"error", "error_message"}` for what the framework
refuses, `{"error_code", "error_message", "error_name"}` for an error of a route's work."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from canopy.domain.errors import Conflict, InvalidRequest, NotFound, Unsupported
from tests.api.conftest import Api
from tests.api.reservation.test_leases import V1, blazar_error, flask_error
from tests.api.tokens import caller

HOSTS = f"{V1}/os-hosts"
JSON = {"Content-Type": "application/json"}


async def test_what_the_framework_refuses_is_flasks_body(api: Api) -> None:
    # An unknown path, and a method the path does not serve.
    flask_error(await api.client.get(f"{V1}/no-such-thing"), 404)
    flask_error(await api.client.patch(f"{V1}/leases"), 405)
    # A body that is not JSON, or not JSON text: Blazar's request_data fails before the
    # route runs.
    flask_error(await api.client.post(f"{V1}/leases", content=b"{not json", headers=JSON), 400)
    r = await api.client.post(f"{V1}/leases", content=b'{"name": "\xff"}', headers=JSON)
    flask_error(r, 400)
    # A Content-Type Blazar does not read as JSON: its request_data's 400 (test_gate.py).
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    r = await api.client.post(f"{V1}/leases", content=b"name=x", headers=form)
    assert flask_error(r, 400) == "Content type 'application/x-www-form-urlencoded' isn't supported"
    # A refused token: keystonemiddleware's place, in front of Blazar's code.
    r = await api.client.get(f"{V1}/leases", headers={"X-Auth-Token": "nope"})
    assert "authentication" in flask_error(r, 401)
    assert (await api.client.get(f"{V1}/leases")).json()["leases"] == []


async def test_errors_of_the_routes_work_are_blazars_body_named_by_code(api: Api) -> None:
    # Not found, invalid input, conflicts, and the policy's refusal (PolicyNotAuthorized is
    # a BlazarException too).
    blazar_error(await api.client.get(f"{V1}/leases/{'0' * 32}"), 404)
    blazar_error(await api.client.get(f"{HOSTS}/999"), 404)
    assert "is required" in blazar_error(await api.client.post(HOSTS, json={}), 400)
    blazar_error(await api.client.post(f"{V1}/leases", json=[1]), 400)
    blazar_error(await api.client.post(f"{V1}/leases", json={"name": 5}), 400)
    assert (await api.client.post(HOSTS, json={"name": "private:h1"})).status_code == 201
    blazar_error(await api.client.post(HOSTS, json={"name": "private:h1"}), 409)
    member = await caller(api.plane.db, api.plane.clock, project="p2", user="u2", role="member")
    blazar_error(await api.client.get(HOSTS, headers=member.headers), 403)


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (InvalidRequest("bad thing"), 400),
        (NotFound("no thing"), 404),
        (Conflict("busy thing"), 409),
        (Unsupported("cannot do that", cloud="c"), 501),
        (IntegrityError("INSERT", {}, Exception("dup")), 409),
        (OperationalError("SELECT", {}, Exception("down")), 503),
    ],
)
async def test_every_raised_error_is_named_by_its_code(api: Api, exc: Exception, code: int) -> None:
    async def boom() -> None:
        raise exc

    api.app.add_api_route(f"{V1}/boom", boom)
    message = blazar_error(await api.client.get(f"{V1}/boom"), code)
    assert message
    # The same error elsewhere keeps that service's body.
    api.app.add_api_route("/canopy/v1/boom", boom)
    r = await api.client.get("/canopy/v1/boom")
    assert r.status_code == code and "error_code" not in r.json(), r.text


async def test_an_unexpected_exception_is_internal_errors_500(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    async def bug() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    api.app.add_api_route(f"{V1}/bug", bug)
    with caplog.at_level(logging.ERROR, logger="canopy.api.errors"):
        r = await api.client.get(f"{V1}/bug")
    assert r.status_code == 500, r.text
    body = r.json()
    assert set(body) == {"error_code", "error_message", "error_name"}, body
    assert body["error_code"] == 500 and body["error_name"] == "INTERNAL_SERVER_ERROR"
    assert "hunter2" not in body["error_message"]
    assert any(rec.exc_info for rec in caplog.records)
