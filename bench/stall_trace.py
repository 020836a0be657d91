"""A diagnostic for `loop_stalls`: what holds the event loop when it stalls.

A task on the loop stamps the time every few milliseconds; a thread watches the stamp and,
while it is older than `threshold` seconds (the loop is held), samples the loop thread's
stack every `every` seconds, and the other threads' stacks beside it (a thread running
Python then is what keeps the GIL from the loop: docs/architecture.md, "A thread
computing beside the loop"). Samples are counted by stack (the innermost frames of canopy's
own code, with the frame that called into them), so a stack's count times `every` is about
how long it held the loop. The counts are written to `path` every second (the process may
be ended at any moment), most frequent first. SIGUSR1 starts a new phase: what was counted
so far stays in `path` + ".0" (then ".1", ...), and the counting starts again.

Enabled in the `canopy up` child by `python -m bench.loop_stalls --trace-stalls FILE`.

Its samples lean toward calls that let the GIL go (SQLite's steps, socket sends): this
thread can only take one while the loop's thread is inside such a call, so a stall of
Python code is seen at its edges. `bench/loop_steps.py` (`--trace-steps`) times each step
of the loop instead, with its CPU.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
import time
import traceback
from collections import Counter
from pathlib import Path

DEPTH = 12  # canopy frames kept per sample
INNER = 4  # innermost frames kept, whoever's


def _key(frame: object) -> str:
    frames = traceback.extract_stack(frame)  # type: ignore[arg-type]
    own = [f for f in frames if "/canopy/" in f.filename or "sqlalchemy" in f.filename]
    # canopy's own frames, then the innermost ones whatever they are (a JSON encoder, a
    # response writer), which say what the time went to
    inner = [f for f in frames[-INNER:] if f not in own[-DEPTH:]]
    keep = own[-DEPTH:] + inner
    return "\n".join(f"  {Path(f.filename).name}:{f.lineno} {f.name}" for f in keep)


def install(path: Path, threshold: float = 0.02, every: float = 0.002) -> asyncio.Task[None]:
    """Start tracing the running loop's stalls into `path`; the heartbeat task."""
    loop_thread = threading.get_ident()
    beat = [time.perf_counter()]
    samples: Counter[str] = Counter()
    others: Counter[str] = Counter()  # the other threads' stacks at the same moments
    stalls = [0, 0.0]  # count, longest (s)
    phase = [0]

    def next_phase() -> None:
        _write(path.with_name(f"{path.name}.{phase[0]}"), samples, others, stalls, every)
        phase[0] += 1
        samples.clear()
        others.clear()
        stalls[:] = [0, 0.0]

    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, next_phase)

    async def heartbeat() -> None:
        while True:
            beat[0] = time.perf_counter()
            await asyncio.sleep(0.002)

    def watch() -> None:
        mine = threading.get_ident()
        written = time.perf_counter()
        in_stall = False
        while True:
            time.sleep(every)
            now = time.perf_counter()
            held = now - beat[0]
            if held > threshold:
                if not in_stall:
                    stalls[0] += 1
                in_stall = True
                stalls[1] = max(stalls[1], held)
                frames = sys._current_frames()
                frame = frames.get(loop_thread)
                if frame is not None:
                    samples[_key(frame)] += 1
                for ident, other in frames.items():  # and what the other threads were in
                    if ident not in (loop_thread, mine):
                        others[_key(other)] += 1
            else:
                in_stall = False
            if now - written > 1.0:
                written = now
                _write(path, samples, others, stalls, every)

    threading.Thread(target=watch, daemon=True, name="stall-trace").start()
    return asyncio.get_running_loop().create_task(heartbeat())


def _write(
    path: Path, samples: Counter[str], others: Counter[str], stalls: list[float], every: float
) -> None:
    total = sum(samples.values())
    lines = [
        f"{int(stalls[0])} stalls over the threshold, longest {stalls[1] * 1000:.0f} ms;"
        f" {total} samples every {every * 1000:.0f} ms"
    ]
    for stack, n in samples.most_common(25):
        lines.append(f"\n{n} samples ({n * every * 1000:.0f} ms, {100 * n / total:.0f}%):\n{stack}")
    # A thread running Python while the loop is held is what keeps the GIL from it (a
    # thread idle in a queue's wait is listed too: it holds nothing).
    lines.append("\n== the other threads, at the same moments")
    for stack, n in others.most_common(10):
        lines.append(f"\n{n} samples:\n{stack}")
    path.write_text("\n".join(lines) + "\n")
