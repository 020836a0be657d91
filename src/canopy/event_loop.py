"""The event loop a canopy process runs on: uvloop where it is installed, as uvicorn's
standard install has it.

`canopy up`, `canopy api` (each of its `--workers` processes too), `canopy worker` and
`canopy demo` run their API and controllers on one event loop. uvloop's loop, timers and
socket transports are written in C (libuv): each turn of the loop, each `call_soon` and
each response written costs less CPU than the standard library's, so under load a request
waits less behind the others (BENCHMARKS.md, session 23: `/healthz` p99 under
bench/loop_stalls.py's load). HTTP is still parsed by h11, not by uvicorn's httptools
protocol (cli/serve.py `_server` says why).

`event_loop` in the config chooses: "auto" (the default) is uvloop where it can be
imported (every platform uvloop supports; not Windows) and the standard loop elsewhere;
"uvloop" requires it (a start without it fails and says so); "asyncio" is the standard
library's loop, e.g. to rule uvloop out when chasing a problem.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

T = TypeVar("T")
LoopChoice = Literal["auto", "uvloop", "asyncio"]
LoopFactory = Callable[[], asyncio.AbstractEventLoop]


class LoopUnavailable(Exception):
    """`event_loop = "uvloop"` where uvloop cannot be imported."""


def _uvloop_factory() -> LoopFactory | None:
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        return None
    factory: LoopFactory = uvloop.new_event_loop
    return factory


def loop_factory(choice: LoopChoice) -> LoopFactory | None:
    """The factory of the loop `choice` names (None: the standard library's)."""
    if choice == "asyncio":
        return None
    factory = _uvloop_factory()
    if factory is None and choice == "uvloop":
        raise LoopUnavailable(
            'event_loop = "uvloop", but uvloop cannot be imported here (it is not made for '
            'Windows): install it (pip install uvloop), or set event_loop = "auto" or "asyncio"'
        )
    return factory


def run(coro: Coroutine[Any, Any, T], choice: LoopChoice = "auto") -> T:
    """`asyncio.run(coro)` on the loop `choice` names."""
    try:
        factory = loop_factory(choice)
    except LoopUnavailable:
        coro.close()  # never awaited: no "coroutine was never awaited" warning
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro)
