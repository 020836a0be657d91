"""The app counts the requests it serves, so sync's slices let them go first
(canopy/api_first.py)."""

from __future__ import annotations

import asyncio

from starlette.types import Message

from canopy.api_first import requests
from tests.api.conftest import Api


async def test_the_app_counts_a_request_while_it_reads_the_body(api: Api) -> None:
    body_asked = asyncio.Event()
    body_given = asyncio.Event()
    sent: list[Message] = []

    async def receive() -> Message:
        body_asked.set()
        await body_given.wait()
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/compute/v2.1/servers",
        "raw_path": b"/compute/v2.1/servers",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")],
        "client": ("127.0.0.1", 1),
        "server": ("canopy.test", 80),
    }
    served = asyncio.create_task(api.app(scope, receive, send))
    await body_asked.wait()
    assert requests().in_flight == 1
    body_given.set()
    await served
    assert sent[0]["status"] == 401  # no token: answered, and no longer in flight
    assert requests().in_flight == 0 and requests().idle.is_set()
