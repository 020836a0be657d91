"""Abuse of every endpoint of a real `canopy up`: malformed JSON, wrong types, 10 MB and
100 MB bodies, unknown microversions, unicode edge cases, and a lone surrogate in every
string field, query value and path segment (generated from /openapi.json). Every answer
is a 4xx fault body; none is 5xx.
"""

from __future__ import annotations

import contextlib
import json
import re
import select
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from . import openapi_cases
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
    """An OpenStack fault body: {"<name>": {"code", "message"}}, Keystone's {"error": ...},
    Blazar's (Flask's {"error": <code>, "error_message": "..."}, or its own {"error_code":
    <code>, "error_message": "...", "error_name": <code>}) or Heat's {"code", "title",
    "explanation", "error": {"message", "type", "traceback"}}."""
    if isinstance(body, dict) and set(body) == {"error", "error_message"}:
        return isinstance(body["error"], int) and isinstance(body["error_message"], str)
    if isinstance(body, dict) and set(body) == {"error_code", "error_message", "error_name"}:
        code, name = body["error_code"], body["error_name"]
        named = name == code or (code == 500 and name == "INTERNAL_SERVER_ERROR")
        return isinstance(code, int) and isinstance(body["error_message"], str) and named
    if isinstance(body, dict) and set(body) == {"code", "title", "explanation", "error"}:
        inner = body["error"]
        return isinstance(body["code"], int) and isinstance(inner, dict) and "message" in inner
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


# A lone surrogate, everywhere a string goes -------------------------------------------
#
# Generated from /openapi.json (see openapi_cases.py), so a new endpoint is covered: in a
# JSON body, sent as raw JSON text with the escape "x\ud800", once in every string
# property, item, key and value; in every query parameter the operation declares (and
# `name`, which many handlers read without declaring it); in every path segment. Every
# answer must be a 400 fault body, never a 5xx.

LONE = "x\ud800"
LONE_IN_URL = "x%ED%A0%80"  # the same code point, as a URL can carry it
PAGE_OPERATIONS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def real_ids(canopy_server: CanopyServer) -> dict[str, str]:
    """Existing objects for path parameters, so each request reaches as far as it can."""
    token = canopy_server.token()
    h = {"X-Auth-Token": token, "OpenStack-API-Version": "compute 2.79"}
    with httpx.Client(base_url=canopy_server.base_url, headers=h, timeout=60) as c:
        target = {"name": "target", "imageRef": "cirros", "flavorRef": "1", "networks": "none"}
        server = c.post("/compute/v2.1/servers", json={"server": target})
        assert server.status_code == 202, server.text
        c.post("/compute/v2.1/os-keypairs", json={"keypair": {"name": "kp1"}}).raise_for_status()
        group = c.post(
            "/compute/v2.1/os-server-groups",
            json={"server_group": {"name": "g1", "policy": "anti-affinity"}},
        )
        project = c.post("/identity/v3/projects", json={"project": {"name": "victim"}})
        user = c.post("/identity/v3/users", json={"user": {"name": "victim", "password": "pw"}})
        roles = c.get("/identity/v3/roles").json()["roles"]
        images = c.get("/image/v2/images").json()["images"]
    return {
        "server_id": server.json()["server"]["id"],
        "name": "kp1",
        "group_id": group.json()["server_group"]["id"],
        "project_id": project.json()["project"]["id"],
        "user_id": user.json()["user"]["id"],
        "role_id": next(r["id"] for r in roles if r["name"] == "member"),
        "image_id": images[0]["id"],
        "cloud": "private",
        "flavor_id": "1",
        "tag": "t1",
    }


def _surrogate_cases(
    spec: dict[str, Any], ids: dict[str, str]
) -> tuple[list[tuple[str, str, bytes | None]], list[str]]:
    """(method, url, raw JSON body or None) for every operation, and the operations whose
    body cannot be generated (an opaque schema with no example)."""
    cases: list[tuple[str, str, bytes | None]] = []
    uncovered: list[str] = []
    for template, item in spec["paths"].items():
        names = re.findall(r"\{([^}]+)\}", template)
        url = template
        for n in names:
            url = url.replace(f"{{{n}}}", ids.get(n, UUID0))
        for method, op in item.items():
            if method not in PAGE_OPERATIONS:
                continue
            verb = method.upper()
            for n in names:  # each path segment in turn
                bad = template
                for m in names:
                    bad = bad.replace(f"{{{m}}}", LONE_IN_URL if m == n else ids.get(m, UUID0))
                cases.append((verb, bad, None))
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}
            for q in sorted(declared | {"name"}):
                cases.append((verb, f"{url}?{q}={LONE_IN_URL}", None))
            schema = openapi_cases.json_schema(op, spec)
            if schema is None:
                continue
            bodies = openapi_cases.body_variants(schema, spec, LONE)
            if openapi_cases.is_opaque(schema, spec):
                examples = openapi_cases.OPAQUE_EXAMPLES.get((verb, template))
                if examples is None:
                    uncovered.append(f"{verb} {template}")
                    continue
                for example in examples:
                    bodies.extend(openapi_cases.example_variants(example, LONE))
            for doc in bodies:
                raw = json.dumps(doc)  # ensure_ascii: the surrogate travels as \ud800
                assert "\\ud800" in raw, doc
                cases.append((verb, url, raw.encode("ascii")))
    return cases, uncovered


def test_a_lone_surrogate_anywhere_is_a_400_never_a_5xx(
    canopy_server: CanopyServer, real_ids: dict[str, str]
) -> None:
    spec = httpx.get(f"{canopy_server.base_url}/openapi.json", timeout=30).json()
    cases, uncovered = _surrogate_cases(spec, real_ids)
    assert not uncovered, (
        "these operations take an opaque JSON body: declare its schema or add an example to "
        f"tests/interop/openapi_cases.py OPAQUE_EXAMPLES: {uncovered}"
    )
    bodies = [c for c in cases if c[2] is not None]
    assert len(bodies) >= 100 and len(cases) - len(bodies) >= 150, (len(bodies), len(cases))
    token = canopy_server.token()
    failures: list[str] = []
    with httpx.Client(base_url=canopy_server.base_url, timeout=60) as client:
        for method, url, raw in cases:
            headers = {"OpenStack-API-Version": "compute 2.79", "Content-Type": "application/json"}
            if not url.startswith("/identity/v3/auth/tokens"):
                headers["X-Auth-Token"] = token  # the token request goes unauthenticated
            r = client.request(method, url, content=raw, headers=headers)
            ok = r.status_code == 400
            if ok:
                try:
                    ok = _is_fault(r.json()) or "message" in r.json()  # Glance's is flat
                except ValueError:
                    ok = False
            if not ok:
                failures.append(f"{method} {url} {raw!r:.120} -> {r.status_code} {r.text[:160]}")
    assert not failures, f"{len(failures)} of {len(cases)}:\n" + "\n".join(failures[:40])
    assert "Traceback" not in canopy_server.log()


# Body limits over a real socket --------------------------------------------------------


def _post_raw(
    server: CanopyServer, path: str, head: bytes, body: Iterator[bytes]
) -> tuple[bytes, int]:
    """Send `head` then `body` chunks until the server answers; (answer, bytes sent)."""
    port = int(server.base_url.rsplit(":", 1)[1])
    sent = 0
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: canopy\r\n" + head + b"\r\n")
        deadline = time.monotonic() + 60
        for chunk in body:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable or time.monotonic() > deadline:
                break
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        sock.settimeout(30)
        with contextlib.suppress(ConnectionResetError):
            while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
    return answer, sent


@pytest.mark.parametrize("path", ["/compute/v2.1/servers", "/identity/v3/auth/tokens"])
def test_a_100_mb_body_is_refused_without_being_read_whole(
    canopy_server: CanopyServer, path: str
) -> None:
    size = 100 << 20
    chunk = b"a" * (64 << 10)
    declared = b"Content-Type: application/json\r\nContent-Length: %d\r\n" % size
    answer, sent = _post_raw(canopy_server, path, declared, iter([chunk] * (size // len(chunk))))
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    assert sent < 16 << 20, f"{sent} bytes were taken before the 413"

    def chunked() -> Iterator[bytes]:
        for _ in range(size // len(chunk)):
            yield b"%x\r\n" % len(chunk) + chunk + b"\r\n"

    head = b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
    answer, sent = _post_raw(canopy_server, path, head, chunked())
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    assert sent < 16 << 20, f"{sent} bytes were taken before the 413"
    assert canopy_server.process.poll() is None
