"""Each service's routes are asked only for paths under its prefix (api/service_routes.py):
no route is hidden by it, and a path elsewhere is refused without asking the routes."""

from __future__ import annotations

import re

import pytest
from fastapi import APIRouter, FastAPI
from starlette.routing import Match
from starlette.types import Scope

from canopy.api.app import _routes
from canopy.api.service_routes import ServiceRouter, served_under

# The version documents, which the API schema leaves out (include_in_schema=False).
UNDOCUMENTED = [
    "/identity/",
    "/identity/v3/",
    "/compute",
    "/compute/v2.1",
    "/image",
    "/image/v2",
    "/image/v2/",
    "/reservation",
]


def scope(path: str, method: str = "GET", root_path: str = "") -> Scope:
    return {
        "type": "http",
        "path": root_path + path,
        "root_path": root_path,
        "method": method,
        "headers": [],
        "query_string": b"",
    }


def matched(path: str, method: str) -> bool:
    return any(route.matches(scope(path, method))[0] is Match.FULL for route in _routes())


def documented() -> list[tuple[str, str]]:
    app = FastAPI()
    app.router.routes.extend(_routes())
    paths: dict[str, dict[str, object]] = app.openapi()["paths"]
    return [
        (re.sub(r"\{[^}]*\}", "x", path), method.upper())
        for path, operations in paths.items()
        for method in operations
    ]


def test_every_documented_route_is_still_found() -> None:
    routes = documented()
    assert len(routes) > 100  # every service's routes, not an empty schema
    missed = [(p, m) for p, m in routes if not matched(p, m)]
    assert not missed


def test_every_route_of_a_service_lies_under_its_prefix() -> None:
    """Every route each service router holds, documented or not (FastAPI's effective routes
    of the inclusion): its path is the service's prefix or below it."""
    served: dict[str, list[str]] = {}
    for route in _routes():
        inner = getattr(route, "original_router", None)
        if isinstance(inner, ServiceRouter):
            served[inner.serves] = [c.path for c in route.effective_route_contexts()]
    services = ["/canopy", "/compute", "/identity", "/image", "/orchestration", "/reservation"]
    assert sorted(served) == services
    assert sum(len(paths) for paths in served.values()) > 150
    outside = [
        path
        for serves, paths in served.items()
        for path in paths
        if path != serves and not path.startswith(serves + "/")
    ]
    assert not outside


@pytest.mark.parametrize("path", UNDOCUMENTED)
def test_every_version_document_is_still_found(path: str) -> None:
    assert matched(path, "GET")


def test_a_path_outside_the_prefix_is_refused_without_asking_the_routes() -> None:
    asked: list[str] = []
    inner = APIRouter()

    @inner.get("/{anything:path}")
    def anything(anything: str) -> str:  # pragma: no cover - never called here
        return anything

    route = inner.routes[0]
    original = route.matches

    def counting(s: Scope) -> tuple[Match, Scope]:
        asked.append(s["path"])
        return original(s)

    route.matches = counting  # type: ignore[method-assign]
    outer = APIRouter()
    outer.include_router(served_under("/svc", inner))
    (included,) = outer.routes

    def full(path: str, root_path: str = "") -> bool:
        return included.matches(scope(path, root_path=root_path))[0] is Match.FULL

    assert full("/svc") and full("/svc/") and full("/svc/a/b")
    assert full("/svc/a", root_path="/base")  # the path under the app's root path
    assert asked == ["/svc", "/svc/", "/svc/a/b", "/base/svc/a"]
    asked.clear()
    assert not full("/svcx/a") and not full("/other/svc") and not full("/")
    assert not full("/a", root_path="/svc")  # the path "/svc/a" is "/a" below the root path
    assert asked == []


def test_a_service_router_keeps_its_prefix_without_a_trailing_slash() -> None:
    assert ServiceRouter("/svc/").serves == "/svc"
