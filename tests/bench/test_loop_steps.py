"""bench/loop_steps.py writes down a long step of the loop (where its task resumed and
stopped, wall and CPU) and a collector's pause, and undoes its patch."""

from __future__ import annotations

import asyncio
import gc
import time
from pathlib import Path

from bench.loop_steps import install


class _Cycle:
    def __init__(self) -> None:
        self.me = self


async def _spin(ms: float) -> None:
    """`ms` of this thread's CPU (on a loaded machine, more wall time)."""
    end = time.thread_time() + ms / 1000
    while time.thread_time() < end:
        pass


async def _held() -> None:
    await asyncio.sleep(0)  # resumes here (line 27)...
    await _spin(20)  # one step of 20 ms
    await asyncio.sleep(0)  # ...and stops here (line 29)


def test_a_long_step_and_a_collection_are_written_down(tmp_path: Path) -> None:
    out = tmp_path / "steps"
    run = asyncio.Handle._run
    undo = install(out, threshold=0.01, own="/tests/bench/")
    try:
        asyncio.run(_held())
        for _ in range(300_000):
            _Cycle()  # cyclic garbage: only a collection frees it
        gc.collect()
    finally:
        undo()
    assert asyncio.Handle._run is run
    lines = out.read_text().splitlines()
    held = [line for line in lines if "_held" in line]
    assert len(held) == 1, lines
    wall, cpu = (float(x) for x in held[0].split()[0].split("/"))
    assert cpu >= 19 and wall >= cpu, held  # thread_time's tick may round a little
    assert held[0].endswith("_held FROM test_loop_steps.py:27 TO test_loop_steps.py:29"), held
    pauses = [line for line in lines if "collection of generation 2" in line]
    assert pauses and "freed" in pauses[-1], lines
