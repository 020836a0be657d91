"""/openapi.json documents the statuses each operation really answers.

No 422 anywhere (Canopy answers 400); every operation is described (a route nobody
described fails here); every 4xx is documented with its service's fault schema; and, sending
each operation generated requests (valid and invalid, as the admin, as a member and with no
token, with unknown ids, non-JSON bodies and bad microversions), every 4xx that comes back is
one the document lists, and nothing is a 5xx.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from canopy.api.app import create_app
from canopy.api.openapi import OWN, service
from tests.api.tokens import caller
from tests.controllers.harness import make_plane

EXAMPLES = 4  # generated valid requests per operation
BASE = "http://canopy.test"


@dataclass
class Served:
    client: httpx.AsyncClient
    spec: dict[str, Any]
    tokens: dict[str, str]


@pytest.fixture
async def served(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[Served]:
    # The statuses are the API's, whatever the database: SQLite only keeps this quick.
    shutil.copy(sqlite_template, tmp_path / "canopy.db")
    plane = await make_plane(f"sqlite+aiosqlite:///{tmp_path / 'canopy.db'}", tmp_path)
    app = create_app(settings=plane.settings, db=plane.db, clock=plane.clock)
    admin = await caller(plane.db, plane.clock, project="admin", user="admin", role="admin")
    member = await caller(plane.db, plane.clock, project="demo", user="ann", role="member")
    await plane.create(1)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url=BASE
        ) as client:
            spec = (await client.get("/openapi.json")).json()
            yield Served(client, spec, {"admin": admin.token, "member": member.token})
    finally:
        await plane.close()


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
    ]


async def test_no_operation_documents_a_422(served: Served) -> None:
    assert '"422"' not in str(served.spec).replace("'", '"')
    assert "HTTPValidationError" not in str(served.spec)


async def test_every_operation_is_described_and_nothing_else(served: Served) -> None:
    documented = {(m, p) for m, p, _ in operations(served.spec)}
    assert documented - set(OWN) == set(), "routes not described in canopy.api.openapi.OWN"
    assert set(OWN) - documented == set(), "OWN describes routes that do not exist"


async def test_every_4xx_has_its_services_fault_schema(served: Served) -> None:
    schemas = served.spec["components"]["schemas"]
    assert {"FaultDetail", "KeystoneError", "GlanceError", "BlazarError"} <= set(schemas)
    for method, path, op in operations(served.spec):
        for code, response in op["responses"].items():
            if not code.startswith("4"):
                continue
            schema = response["content"]["application/json"]["schema"]
            kind = service(path)
            if kind == "identity":
                assert schema == {"$ref": "#/components/schemas/KeystoneError"}, (method, path)
            elif kind == "image":
                assert schema == {"$ref": "#/components/schemas/GlanceError"}, (method, path)
            elif kind == "reservation":
                assert schema == {"$ref": "#/components/schemas/BlazarError"}, (method, path)
            elif kind == "orchestration":
                assert schema == {"$ref": "#/components/schemas/HeatError"}, (method, path)
            else:
                (name,) = schema["required"]
                expected = {"400": "badRequest", "404": "itemNotFound", "409": "conflictingRequest"}
                assert name == expected.get(code, name), (method, path, code)


def _cases(op: Any) -> list[Any]:
    """Schema-valid requests for `op` (schemathesis, deterministic)."""
    found: list[Any] = []

    @given(case=op.as_strategy(GenerationMode.POSITIVE))
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    def collect(case: Any) -> None:
        found.append(case)

    collect()
    return found


def _invalid(sample: dict[str, Any], op: Any) -> list[dict[str, Any]]:
    """Hand-made invalid variants of a valid request: bad query values, bad bodies, ids
    that do not exist, bad microversions. (Generated negative cases cost minutes.)"""
    out: list[dict[str, Any]] = []
    base = {k: v for k, v in sample.items() if k not in ("json", "content")}

    def variant(**change: Any) -> dict[str, Any]:
        v = {**base, "headers": dict(base["headers"]), "params": dict(base["params"] or {})}
        headers = change.pop("headers", {})
        v.update(change)
        v["headers"].update(headers)
        return v

    for name in [p.name for p in op.query]:
        for bad in ("not-a-number", "-1", "", "x" * 300):
            out.append(variant(params={**(sample["params"] or {}), name: bad}))
    if op.path_parameters:
        for value in ("no-such-thing", "0" * 64):
            path = op.path
            for param in [p.name for p in op.path_parameters]:
                path = path.replace("{" + param + "}", value)
            out.append(variant(url=BASE + path))
    if "json" in sample or "content" in sample:
        json = {"Content-Type": "application/json"}
        for body in (b"{not json", b"[]", b"{}", b'{"unexpected": 1}', b""):
            out.append(variant(content=body, headers=json))
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        out.append(variant(content=b"name=x", headers=form))
    if op.path.startswith("/compute/v2.1/"):
        for version in ("compute 9.99", "compute two"):
            out.append(variant(headers={"OpenStack-API-Version": version}))
    if op.path.startswith("/reservation/v1/"):
        for version in ("reservation 9.99", "reservation two"):
            out.append(variant(headers={"OpenStack-API-Version": version}))
    return out


def _request(kwargs: dict[str, Any], token: str | None, **headers: str) -> dict[str, Any]:
    out = {
        "method": kwargs["method"],
        "url": kwargs["url"],
        "params": kwargs.get("params") or None,
        "headers": {
            k: v
            for k, v in (kwargs.get("headers") or {}).items()
            if k.lower() not in ("x-auth-token", "accept-encoding", "connection")
        },
    }
    if "json" in kwargs:
        out["json"] = kwargs["json"]
    elif kwargs.get("data") is not None:
        out["content"] = kwargs["data"]
    if token is not None:
        out["headers"]["X-Auth-Token"] = token
    out["headers"].update(headers)
    return out


async def test_every_status_answered_is_documented(served: Served) -> None:
    schema = schemathesis.openapi.from_dict(served.spec)
    seen: dict[tuple[str, str], set[int]] = defaultdict(set)
    samples: dict[tuple[str, int], str] = {}
    admin, member = served.tokens["admin"], served.tokens["member"]
    for result in schema.get_all_operations():
        op = result.ok()
        key = (op.method.upper(), op.path)
        positive = [_request(c.as_transport_kwargs(base_url=BASE), admin) for c in _cases(op)]
        first = positive[0]
        without_token = {k: v for k, v in first["headers"].items() if k != "X-Auth-Token"}
        requests = [
            *positive,
            {**first, "headers": {**first["headers"], "X-Auth-Token": member}},
            {**first, "headers": without_token},
            *_invalid(first, op),
        ]
        for request in requests:
            r = await served.client.request(**request)
            assert r.status_code < 500, f"{key} answered {r.status_code}: {r.text[:300]}"
            seen[key].add(r.status_code)
            samples.setdefault((f"{key[0]} {key[1]}", r.status_code), r.text[:200])

    undocumented: list[str] = []
    for method, path, op in operations(served.spec):
        documented = {int(c) for c in op["responses"] if c.isdigit()}
        for code in sorted(seen[(method, path)]):
            if code >= 400 and code not in documented:
                undocumented.append(
                    f"{method} {path} answered {code} (documented: {sorted(documented)}): "
                    f"{samples[(f'{method} {path}', code)]}"
                )
    assert not undocumented, "\n".join(undocumented)
    # The probe reached the statuses it exists to check.
    every = set().union(*seen.values())
    assert {400, 401, 403, 404, 406} <= every, sorted(every)
