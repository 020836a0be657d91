"""Hand-written abuse of every write endpoint: malformed JSON, wrong types, 10 MB bodies,
unknown microversions and unicode edge cases. Every answer is a 4xx fault body; none is 5xx.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from .conftest import CanopyServer

pytestmark = pytest.mark.slow

WRITE = ("post", "put", "patch", "delete")
UUID0 = "00000000-0000-0000-0000-000000000000"

PAYLOADS: list[tuple[str, bytes, str]] = [
    ("malformed JSON", b'{"server": {"name": "x",', "application/json"),
    ("JSON null", b"null", "application/json"),
    ("JSON list", b"[1, 2, 3]", "application/json"),
    (
        "wrong types",
        json.dumps(
            {
                "server": 5,
                "auth": [],
                "keypair": "k",
                "quota_set": 1,
                "project": 3,
                "user": True,
                "name": {"a": 1},
            }
        ).encode(),
        "application/json",
    ),
    ("deep nesting", ("[" * 5000 + "]" * 5000).encode(), "application/json"),
    (
        "unicode edge cases",
        json.dumps(
            {
                "server": {
                    "name": "\u202e\ud7ff\U0010ffff\u0000",
                    "flavorRef": "\ufeff1",
                    "imageRef": "\u00e9",
                },
                "name": "\u0000\u200b",
            },
            ensure_ascii=False,
        ).encode("utf-8"),
        "application/json",
    ),
    ("invalid UTF-8", b'{"name": "\xff\xfe\xfd"}', "application/json"),
    ("10 MB body", b'{"name": "' + b"a" * (10 * 1024 * 1024) + b'"}', "application/json"),
    ("form body", b"name=x&flavorRef=1", "application/x-www-form-urlencoded"),
]


def _write_operations(spec: dict[str, Any]) -> list[tuple[str, str]]:
    ops = []
    for path, item in spec["paths"].items():
        for method in item:
            if method in WRITE:
                concrete = re.sub(r"\{[^}]+\}", UUID0, path)
                ops.append((method.upper(), concrete))
    return sorted(ops)


@pytest.fixture(scope="module")
def write_ops(canopy_server: CanopyServer) -> list[tuple[str, str]]:
    spec = httpx.get(f"{canopy_server.base_url}/openapi.json", timeout=30).json()
    ops = _write_operations(spec)
    assert len(ops) >= 20, "expected the compute, identity and admin write endpoints"
    return ops


def _is_fault(body: Any) -> bool:
    """An OpenStack fault body: {"<name>": {"code", "message"}} or Keystone's {"error": ...}."""
    if not isinstance(body, dict) or len(body) != 1:
        return False
    (inner,) = body.values()
    return isinstance(inner, dict) and "code" in inner and "message" in inner


@pytest.mark.parametrize("label,body,ctype", PAYLOADS, ids=[p[0] for p in PAYLOADS])
def test_every_write_endpoint_rejects_bad_bodies_cleanly(
    canopy_server: CanopyServer,
    write_ops: list[tuple[str, str]],
    label: str,
    body: bytes,
    ctype: str,
) -> None:
    token = canopy_server.token()
    failures = []
    with httpx.Client(base_url=canopy_server.base_url, timeout=60) as client:
        for method, path in write_ops:
            headers = {
                "X-Auth-Token": token,
                "Content-Type": ctype,
                "OpenStack-API-Version": "compute 2.79",
            }
            r = client.request(method, path, content=body, headers=headers)
            if r.status_code >= 500:
                failures.append(f"{method} {path} -> {r.status_code} {r.text[:200]}")
            elif r.status_code >= 400:
                try:
                    ok = _is_fault(r.json())
                except ValueError:
                    ok = False
                if not ok:
                    failures.append(
                        f"{method} {path} -> {r.status_code} not a fault body: {r.text[:200]}"
                    )
    assert not failures, f"{label}:\n" + "\n".join(failures)


@pytest.mark.parametrize(
    "version",
    ["compute 2.200", "compute 1.0", "compute banana", "compute 2.1.1", "compute latest\u00e9"],
)
def test_unknown_microversions_are_refused_not_crashed(
    canopy_server: CanopyServer, version: str
) -> None:
    token = canopy_server.token()
    r = httpx.post(
        f"{canopy_server.base_url}/compute/v2.1/servers",
        headers={"X-Auth-Token": token.encode(), "OpenStack-API-Version": version.encode()},
        json={"server": {"name": "x", "flavorRef": "1", "imageRef": UUID0}},
        timeout=30,
    )
    assert r.status_code in (400, 406), r.text
    assert _is_fault(r.json())
