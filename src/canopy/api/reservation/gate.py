"""What Blazar's Flask blueprint does around every v1 route before the route runs: the
microversion, and the request body's Content-Type (blazar/api/v1/utils.py).

- **Microversion** (`set_api_version_request`, `add_vary_header`): `OpenStack-API-Version:
  reservation X.Y`; none means 1.0, `latest` the maximum. Blazar serves 1.0 only (min =
  max = 1.0, as the version document says). A malformed version is Flask's 400 ("API
  Version String X is of invalid format. Must be of format MajorNum.MinorNum."), one out
  of range Flask's 406 ("Version X is not supported by the API. Minimum is 1.0 and
  maximum is 1.0."), neither with the headers. Every other answer of a route (its errors
  too) carries `OpenStack-API-Version: reservation 1.0` and `Vary: OpenStack-API-Version`.
  Like Blazar's blueprint hook this applies to the paths a route serves, with its
  method: an unknown path or a method not served is Flask's 404/405 whatever the header.
- **Content-Type** (`request_data`, POST and PUT): an empty body is not looked at; a
  non-empty one is read as JSON when it has no Content-Type or one that application/json
  matches (werkzeug's MIME matching: application/json, application/*, */*; parameters
  such as charset are dropped first); any other is Flask's 400 "Content type '<type>'
  isn't supported". An accepted body is handed on as application/json.

Two deliberate differences, both where Blazar answers 500 for the caller's input (a 500
is a bug here): a body that is not JSON, which Blazar's `jsonutils.loads` fails on
outside the route's error handling, is Flask's 400 (api/reservation/faults.py); a
Content-Type with no `/`, which werkzeug's matching raises on, is the 400 above. And the
token check comes after this gate, where keystonemiddleware comes before Blazar's: a
request wrong in both ways is answered for the first fault found here.
"""

from __future__ import annotations

import re

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from canopy.api.errors import fault_response

V1 = "/reservation/v1"
SERVICE_TYPE = "reservation"
MIN_VERSION = (1, 0)
MAX_VERSION = (1, 0)
VERSION_HEADER = "OpenStack-API-Version"

_VERSION = re.compile(r"^([1-9]\d*)\.([1-9]\d*|0)$")
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


def fmt(v: tuple[int, int]) -> str:
    return f"{v[0]}.{v[1]}"


class VersionRefused(Exception):
    """A microversion Blazar refuses: `code` 400 (malformed) or 406 (out of range)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def requested_version(headers: list[str]) -> str | None:
    """The version asked of this service in `OpenStack-API-Version` (each header a
    comma-separated list of `<service type> <version>`), or None."""
    for header in headers:
        for part in header.split(","):
            words = part.strip().split(None, 1)
            if len(words) == 2 and words[0].lower() == SERVICE_TYPE:
                return words[1].strip()
    return None


def negotiate(raw: str | None) -> tuple[int, int]:
    """The version to serve for the one asked (`raw`), or VersionRefused."""
    if raw is None:
        return MIN_VERSION
    if raw == "latest":
        return MAX_VERSION
    m = _VERSION.match(raw)
    if m is None:
        raise VersionRefused(
            400,
            f"API Version String {raw[:80]} is of invalid format. Must be of format "
            "MajorNum.MinorNum.",
        )
    major, minor = m.group(1), m.group(2)
    # A number longer than any version is out of range as it stands: int() of more than
    # 4,300 digits raises, and a shorter huge one is work for nothing.
    v = (int(major), int(minor)) if max(len(major), len(minor)) <= 9 else None
    if v is None or not MIN_VERSION <= v <= MAX_VERSION:
        raise VersionRefused(
            406,
            f"Version {raw[:80]} is not supported by the API. Minimum is "
            f"{fmt(MIN_VERSION)} and maximum is {fmt(MAX_VERSION)}.",
        )
    return v


def mimetype(content_type: str | None) -> str:
    """werkzeug's `request.mimetype`: the type without parameters, lower case."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def json_accepted(mime: str) -> bool:
    """Whether Blazar reads a body of this mimetype as JSON (none, or one that
    application/json matches)."""
    if not mime:
        return True
    kind, slash, sub = mime.partition("/")
    if not slash:
        return False
    return (kind, sub) in (("*", "*"), ("application", "*"), ("application", "json"))


class BlazarGate:
    """Pure ASGI, around the body guard and inside the error net (api/app.py)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    @staticmethod
    def _served(scope: Scope) -> bool:
        """Whether a route serves this path with this method (Blazar's blueprint hooks
        run only then)."""
        routes: list[BaseRoute] = scope["app"].router.routes
        return any(route.matches(scope)[0] is Match.FULL for route in routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(V1 + "/") or not self._served(scope):
            await self.app(scope, receive, send)
            return
        headers = MutableHeaders(scope=scope)
        try:
            version = negotiate(requested_version(headers.getlist("openstack-api-version")))
        except VersionRefused as refused:
            await fault_response(Request(scope), refused.code, str(refused))(scope, receive, send)
            return

        async def send_with_version(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                out[VERSION_HEADER] = f"{SERVICE_TYPE} {fmt(version)}"
                out["Vary"] = VERSION_HEADER
            await send(message)

        if scope.get("method") in _WITH_BODY:
            mime = mimetype(headers.get("content-type"))
            empty, receive = await _empty_body(headers, receive)
            if not empty:
                if not json_accepted(mime):
                    # The body is not read: the connection is closed after the answer,
                    # as the body guard does for one it refuses.
                    message = f"Content type '{mime[:80]}' isn't supported"
                    close = {"connection": "close"}
                    response = fault_response(Request(scope), 400, message, close)
                    await response(scope, receive, send_with_version)
                    return
                headers["content-type"] = "application/json"
        await self.app(scope, receive, send_with_version)


async def _empty_body(headers: MutableHeaders, receive: Receive) -> tuple[bool, Receive]:
    """Whether the request's body is empty, and the `receive` to read it from: its
    Content-Length says; without one (chunked) the first message is read and handed on."""
    declared = headers.get("content-length")
    if declared is not None and declared.strip().isdigit():
        return int(declared) == 0, receive
    first = await receive()
    empty = (
        first["type"] == "http.request"
        and not first.get("body")
        and not first.get("more_body", False)
    )
    given = False

    async def replay() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return first

    return empty, replay
