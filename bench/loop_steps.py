"""A diagnostic for `loop_stalls`: the event loop's long steps, and the collector's pauses.

`bench/stall_trace.py` samples the loop's stack while it is held. Its samples land mostly in
calls that let the GIL go (SQLite's steps, socket sends): the sampling thread can only look
while the loop's thread is inside one, so a stall made of Python code is seen at its
edges. This counts instead: every callback the loop runs is timed (wall and the thread's
CPU), and one over `threshold` is written down with where its task resumed and where it
stopped (the innermost frames of canopy's code, each side), and for a request, its method
and path. The garbage collector's pauses are timed too (`gc.callbacks`), with their
generation and what they freed.

`path` gets one line per long step or pause, oldest first, rewritten every second:
`<wall ms>/<CPU ms> <seconds since start> <what>`. Enabled in the `canopy up` child by
`python -m bench.loop_stalls --trace-steps FILE` (FILE.PID), which runs that child on the
standard library's loop: uvloop's callbacks are not `asyncio.Handle`s to time.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

FRAMES = 3  # canopy frames kept each side


def _where(callback: Any, own: str) -> tuple[list[tuple[str, int]], Any]:
    """The frames (file, line) under `own` in the task a callback steps, innermost last,
    and its coroutine. Run before every callback: no text is made here."""
    task = getattr(callback, "__self__", None)
    if not isinstance(task, asyncio.Task):
        return [], None
    coro: Any = task.get_coro()
    top = coro
    frames = []
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None and own in frame.f_code.co_filename:
            frames.append((frame.f_code.co_filename, frame.f_lineno))
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return frames, top


def _text(frames: list[tuple[str, int]]) -> str:
    return ">".join(f"{Path(name).name}:{line}" for name, line in frames[-FRAMES:]) or "-"


def _request(coro: Any) -> str:
    """`METHOD /path` of uvicorn's request cycle, else the coroutine's name."""
    frame = getattr(coro, "cr_frame", None)
    owner = frame.f_locals.get("self") if frame is not None else None
    scope = getattr(owner, "scope", None)
    if isinstance(scope, dict) and "path" in scope:
        return f"{scope.get('method', '')} {scope['path']}"
    return str(getattr(coro, "__qualname__", "?"))


def install(path: Path, threshold: float = 0.003, own: str = "/canopy/") -> Callable[[], None]:
    """Time the loop's callbacks (every loop's: asyncio's `Handle` is patched) and the
    collector's pauses into `path`; returns what undoes it (and writes `path` once more)."""
    start = time.perf_counter()
    long: list[str] = []
    run = asyncio.Handle._run

    def timed(self: asyncio.Handle) -> None:
        before, _ = _where(self._callback, own)
        t0, c0 = time.perf_counter(), time.thread_time()
        run(self)
        wall, cpu = time.perf_counter() - t0, time.thread_time() - c0
        if wall > threshold:
            after, coro = _where(self._callback, own)
            what = _request(coro) if coro is not None else repr(self._callback)[:80]
            long.append(
                f"{wall * 1000:.1f}/{cpu * 1000:.1f} {t0 - start:.3f} {what}"
                f" FROM {_text(before)} TO {_text(after)}"
            )

    asyncio.Handle._run = timed  # type: ignore[method-assign]
    began = [0.0]

    def collector(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            began[0] = time.perf_counter()
            return
        wall = time.perf_counter() - began[0]
        if wall > threshold:
            long.append(
                f"{wall * 1000:.1f}/gc {began[0] - start:.3f} collection of generation"
                f" {info['generation']}, {info['collected']} freed"
            )

    gc.callbacks.append(collector)

    stop = threading.Event()

    def write() -> None:
        path.write_text("\n".join(long) + "\n")

    def writer() -> None:
        while not stop.wait(1.0):
            write()

    thread = threading.Thread(target=writer, daemon=True, name="loop-steps")
    thread.start()

    def undo() -> None:
        asyncio.Handle._run = run  # type: ignore[method-assign]
        gc.callbacks.remove(collector)
        stop.set()
        thread.join()
        write()

    return undo
