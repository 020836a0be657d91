"""What Canopy answers for what it does not serve, in the fault format of the service asked.

Under `/compute/v2.1`, `/image/v2`, `/identity/v3` and `/canopy/v1`:

- a path Canopy serves, asked with a method it does not: **405** (`badMethod`), with an
  `Allow` header listing every method Canopy serves on that path (Starlette's own 405 names
  only the methods of the first route that matched);
- a path Canopy does not serve that names an operation of the OpenStack API it knows it
  lacks (`server set --property`, hypervisors, image upload, groups, ...): **501**
  (`notImplemented`), as Nova answers for an operation its driver does not implement,
  saying what is not supported and what to do instead;
- any other path: **404** (`itemNotFound`), saying Canopy does not serve it, so a client's
  "not found" never reads like a missing server.

A route's own 404 (a server that does not exist) is untouched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.routing import Match
from starlette.types import Receive, Scope, Send

from canopy.api.errors import fault_response

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")

SERVICES = {
    "/compute/v2.1": "compute",
    "/image/v2": "image",
    "/identity/v3": "identity",
    "/canopy/v1": "admin",
}

_ID = r"[^/]+"


@dataclass(frozen=True)
class Lacking:
    """An OpenStack operation Canopy knows it does not implement, and what to do instead."""

    service: str  # a key of SERVICES
    pattern: str  # a regex over the path after the service prefix
    what: str  # "server ports"
    instead: str = ""

    def matches(self, rest: str) -> bool:
        return re.fullmatch(self.pattern, rest) is not None


_VOLUMES = "volumes and networks are the backing clouds' own: manage them there"
_IMAGES = (
    "Canopy keeps no image data: register an image with `canopy image create NAME --map "
    "CLOUD=REMOTE_ID` (or POST /canopy/v1/images), naming each cloud's own copy"
)
_ADMIN_VIEWS = "the clouds behind Canopy are shown by `canopy cloud list` and GET /canopy/v1/clouds"

LACKING: tuple[Lacking, ...] = (
    Lacking("compute", rf"/servers/{_ID}/(os-interface|ips)(/{_ID})?", "server ports", _VOLUMES),
    Lacking("compute", rf"/servers/{_ID}/os-volume_attachments(/{_ID})?", "volumes", _VOLUMES),
    Lacking(
        "compute",
        rf"/servers/{_ID}/(diagnostics|os-server-password|remote-consoles|migrations.*)",
        "this server operation",
    ),
    Lacking(
        "compute",
        r"/(os-hypervisors|os-services|os-aggregates|os-hosts|os-migrations|"
        r"os-simple-tenant-usage|os-instance-usage-audit-log)(/.*)?",
        "the hypervisor, service and aggregate views of a single Nova",
        _ADMIN_VIEWS,
    ),
    Lacking("compute", r"/(os-volumes|os-snapshots|images)(/.*)?", "this proxy API", _VOLUMES),
    Lacking("image", rf"/images/{_ID}/(file|stage|import)", "image data", _IMAGES),
    Lacking(
        "image",
        rf"/images/{_ID}/(tags|members|actions)(/.*)?",
        "image tags, members and actions",
        _IMAGES,
    ),
    Lacking("image", r"/(tasks|info|metadefs|stores)(/.*)?", "this part of Glance", _IMAGES),
    Lacking(
        "identity",
        r"/(groups|credentials|policies|services/.*/endpoints|OS-[A-Z0-9-]+|limits|"
        r"registered_limits|system|domains/.+/config)(/.*)?",
        "this part of Keystone",
        "Canopy's identity has one domain, projects, users and the admin/member/reader roles",
    ),
    Lacking(
        "identity",
        rf"/users/{_ID}/(access_rules|credentials)(/.*)?",
        "access rules and per-user credentials (EC2, TOTP)",
        "authenticate with a user's password or an application credential "
        "(/v3/users/{user_id}/application_credentials)",
    ),
)


def service_of(path: str) -> tuple[str, str] | None:
    """(service prefix, the rest of the path) for a path under a served API, else None."""
    for prefix in SERVICES:
        if path == prefix or path.startswith(prefix + "/"):
            return prefix, path[len(prefix) :]
    return None


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every method some route of `app` serves at `path`, in a stable order."""
    allowed: list[str] = []
    for method in METHODS:
        scope: Scope = {
            "type": "http",
            "path": path,
            "method": method,
            "root_path": "",
            "headers": [],
            "query_string": b"",
        }
        if any(route.matches(scope)[0] is Match.FULL for route in app.router.routes):
            allowed.append(method)
    return allowed


def lacking(path: str) -> Lacking | None:
    """The known-unsupported operation `path` names, if it names one."""
    found = service_of(path)
    if found is None:
        return None
    prefix, rest = found
    service = SERVICES[prefix]
    return next((x for x in LACKING if x.service == service and x.matches(rest)), None)


def unsupported_response(request: Request, allowed: list[str]) -> JSONResponse:
    """The fault for a request no route serves (`allowed`: the methods served at its path)."""
    method, path = request.method, request.url.path
    known = lacking(path)
    if allowed:
        message = (
            f"Canopy does not support {method} on {path}; this resource allows "
            f"{', '.join(allowed)}."
        )
        if known is not None and known.instead:
            message += f" {known.instead[0].upper()}{known.instead[1:]}."
        return fault_response(request, 405, message, {"Allow": ", ".join(allowed)})
    if known is not None:
        message = f"Canopy does not support {known.what}: {method} {path} is not implemented."
        if known.instead:
            message += f" {known.instead[0].upper()}{known.instead[1:]}."
        return fault_response(request, 501, message)
    found = service_of(path)
    name = SERVICES[found[0]] if found else "canopy"
    return fault_response(
        request,
        404,
        f"The resource could not be found: Canopy does not serve {method} {path}. The "
        f"{name} operations it supports are listed at /docs (OpenAPI: /openapi.json).",
    )


def install_unsupported(app: FastAPI) -> None:
    """Answer requests no route serves as described above. Call once, after the routers
    are included (it reads the app's routes on each such request)."""
    default = app.router.default

    async def no_route(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or service_of(scope["path"]) is None:
            await default(scope, receive, send)
            return
        request = Request(scope, receive)
        await unsupported_response(request, [])(scope, receive, send)

    async def method_not_allowed(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        allowed = allowed_methods(app, request.url.path)
        if not allowed:  # pragma: no cover - a 405 always comes from a route at this path
            allowed = [m.strip() for m in (exc.headers or {}).get("Allow", "").split(",") if m]
        return unsupported_response(request, allowed)

    app.router.default = no_route
    app.add_exception_handler(405, method_not_allowed)
