"""Nova microversions: parse the request's version, refuse unknown ones, echo it back.

Clients send `OpenStack-API-Version: compute 2.X` and/or `X-OpenStack-Nova-API-Version:
2.X`; `latest` means the maximum; no header means 2.1. Every response under /compute
carries both headers and `Vary`, as Nova's do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from canopy.domain.errors import CanopyError

MIN_VERSION = (2, 1)
MAX_VERSION = (2, 79)

_VERSION = re.compile(r"^([1-9]\d{0,2})\.(0|[1-9]\d{0,3})$")


class VersionNotAcceptable(CanopyError):
    """A microversion outside [MIN, MAX] (406)."""


class BadVersion(CanopyError):
    """A malformed microversion header (400)."""


@dataclass(frozen=True, order=True, slots=True)
class APIVersion:
    major: int
    minor: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    def at_least(self, minor: int) -> bool:
        """True if this request's version is >= 2.`minor`."""
        return (self.major, self.minor) >= (2, minor)


def fmt(v: tuple[int, int]) -> str:
    return f"{v[0]}.{v[1]}"


def parse(request: Request) -> APIVersion:
    """The microversion asked for (2.1 if none), or BadVersion / VersionNotAcceptable."""
    raw: str | None = None
    header = request.headers.get("openstack-api-version")
    if header:
        for part in header.split(","):
            words = part.strip().split()
            if len(words) == 2 and words[0].lower() == "compute":
                raw = words[1]
    if raw is None:
        raw = request.headers.get("x-openstack-nova-api-version")
    if raw is None:
        return APIVersion(*MIN_VERSION)
    raw = raw.strip()
    if raw.lower() == "latest":
        return APIVersion(*MAX_VERSION)
    m = _VERSION.match(raw)
    if not m:
        raise BadVersion(f"Invalid API version request string: {raw[:40]!r}")
    v = (int(m.group(1)), int(m.group(2)))
    if v < MIN_VERSION or v > MAX_VERSION:
        raise VersionNotAcceptable(
            f"Version {fmt(v)} is not supported by the API. Minimum is {fmt(MIN_VERSION)} "
            f"and maximum is {fmt(MAX_VERSION)}."
        )
    return APIVersion(*v)


async def microversion(request: Request) -> APIVersion:
    """Dependency: the request's microversion (also stored for the response headers)."""
    v = parse(request)
    request.state.compute_version = v
    return v


VersionDep = Annotated[APIVersion, Depends(microversion)]


class _EchoVersion:
    """Pure ASGI (not BaseHTTPMiddleware), so a client that goes away mid-request is not
    an error here."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/compute"):
            await self.app(scope, receive, send)
            return
        request = Request(scope)

        async def send_with_version(message: Message) -> None:
            if message["type"] == "http.response.start":
                v = getattr(request.state, "compute_version", None)
                if v is None:
                    try:
                        v = parse(request)
                    except CanopyError:
                        v = None
                headers = MutableHeaders(scope=message)
                if v is not None:
                    headers["OpenStack-API-Version"] = f"compute {v}"
                    headers["X-OpenStack-Nova-API-Version"] = str(v)
                headers["Vary"] = "OpenStack-API-Version, X-OpenStack-Nova-API-Version"
            await send(message)

        await self.app(scope, receive, send_with_version)


def install_headers(app: FastAPI) -> None:
    """Echo the negotiated microversion on every /compute response, as Nova does."""
    app.add_middleware(_EchoVersion)
