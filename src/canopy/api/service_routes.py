"""One router per service, which tells a request outside its path prefix at once that none
of its routes matches.

FastAPI (0.165) finds a request's route by asking each route of the app in turn, and an
included router by asking each of its own routes in turn, with some bookkeeping for every
route asked: a `GET /compute/v2.1/servers/detail` was matched against every admin and
identity route before the compute ones, about 0.3 ms of CPU before its handler ran (0.55 ms
for an orchestration route, the last service), and the route is matched twice per request
(once to find it, once within the router that holds it). Every route of a service lies
under its prefix (`/compute`, `/identity`, ...; tests/api/test_service_routes.py checks
it), so a request for another service is refused by one string comparison per service:
each service's factory builds a `ServiceRouter` (admin and subscriptions share `/canopy`
through `served_under`), and matching the detail route takes 49 us.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.routing import Match
from starlette.types import Scope


class ServiceRouter(APIRouter):
    """An APIRouter all of whose routes lie under `serves` (a path such as "/compute"): the
    path itself or anything below it. A request elsewhere matches none of them, without
    asking them. `serves` is the whole path below the app's root path: include this
    router without a prefix."""

    def __init__(self, serves: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.serves = serves.rstrip("/")
        self._below = self.serves + "/"

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path = _route_path(scope)
        if path != self.serves and not path.startswith(self._below):
            return Match.NONE, {}
        return super().matches(scope)


def _route_path(scope: Scope) -> str:
    """The path below the app's root path, as Starlette's routes read it (its
    `get_route_path`, which it does not export)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path != root and path[len(root)] == "/":
        return path[len(root) :]
    return "" if root and path == root else path


def served_under(serves: str, *routers: APIRouter) -> ServiceRouter:
    """A `ServiceRouter` for `serves` holding `routers` (a service's routers, as built)."""
    outer = ServiceRouter(serves)
    for router in routers:
        outer.include_router(router)
    return outer
