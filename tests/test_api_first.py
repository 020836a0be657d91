"""The API goes first: sync's slices wait, for a bounded time, while requests are served
(canopy/api_first.py). On a virtual clock: no test sleeps."""

from __future__ import annotations

import asyncio

import pytest
from starlette.types import Message, Receive, Scope, Send

from canopy.api_first import BOUND, LINGER, InFlight, after_requests, requests
from tests.virtual_time import run


async def _waited() -> float:
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await after_requests()
    return loop.time() - t0


def test_a_loop_that_serves_no_request_goes_on_at_once() -> None:
    assert run(_waited()) == 0


def test_an_idle_api_costs_nothing() -> None:
    async def main() -> float:
        r = requests()
        r.started()
        r.finished(asyncio.get_running_loop().time())
        await asyncio.sleep(LINGER)  # quiet since
        return await _waited()

    assert run(main()) == 0


def test_waits_while_a_request_is_in_flight_then_a_linger() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        r = requests()
        r.started()
        loop.call_later(0.004, lambda: r.finished(loop.time()))
        return await _waited()

    assert run(main()) == pytest.approx(0.004 + LINGER, abs=1e-5)


def test_a_request_that_comes_in_the_linger_is_waited_for_too() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        r = requests()
        r.started()
        r.finished(loop.time())  # one answered just now: the client's next is coming
        loop.call_later(LINGER / 2, r.started)
        loop.call_later(LINGER / 2 + 0.003, lambda: r.finished(loop.time()))
        return await _waited()

    assert run(main()) == pytest.approx(LINGER / 2 + 0.003 + LINGER, abs=1e-5)


def test_goes_on_after_the_bound_whatever_the_load() -> None:
    async def main() -> float:
        requests().started()  # never finishes
        return await _waited()

    assert run(main()) == pytest.approx(BOUND, abs=1e-5)


def test_goes_on_after_the_bound_when_requests_follow_each_other() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        r = requests()

        def one() -> None:  # a request of 2 ms, the next one right after it
            r.started()
            loop.call_later(0.002, lambda: (r.finished(loop.time()), one()))

        one()
        return await _waited()

    assert run(main()) == pytest.approx(BOUND, abs=1e-5)


def test_the_middleware_counts_a_request_while_the_app_serves_it() -> None:
    seen: list[int] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(requests().in_flight)
        if scope.get("path") == "/fails":
            raise RuntimeError("the app failed")

    async def main() -> tuple[int, bool]:
        async def receive() -> Message:
            return {"type": "http.request"}

        async def send(message: Message) -> None:
            pass

        mw = InFlight(app)
        await mw({"type": "http", "path": "/"}, receive, send)
        with pytest.raises(RuntimeError):
            await mw({"type": "http", "path": "/fails"}, receive, send)
        await mw({"type": "lifespan"}, receive, send)  # not a request
        r = requests()
        return r.in_flight, r.idle.is_set()

    assert run(main()) == (0, True)
    assert seen == [1, 1, 0]
