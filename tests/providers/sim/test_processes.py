"""Two processes sharing an atomic sim cloud's file never create a server twice.

Atomic creates only: a Nova-like cloud (the default) may create twice by design (see
test_lifecycle.py and test_create_log.py).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from canopy.config import SimSettings
from canopy.domain.clock import FakeClock
from canopy.providers.sim.driver import SimCompute

# A canopy worker in its own process: creates the same canopy ids as its twin, at once.
_WORKER = """
import asyncio, json, sys
from pathlib import Path
from canopy.config import SimSettings
from canopy.domain.clock import FakeClock
from canopy.domain.specs import Resources, ServerSpec
from canopy.providers.sim.driver import SimCompute

async def main(path: str, seed: int, count: int) -> None:
    settings = SimSettings(api_latency_ms=0, hosts=64, atomic_create=True)
    sim = SimCompute("shared", settings, Path(path),
                     FakeClock(), seed)
    made = {}
    for n in range(count):
        cid = f"{n:08x}-0000-4000-8000-000000000000"
        spec = ServerSpec(cid, "w", "m1.tiny", Resources(1, 512, 1), None, "cirros")
        made[cid] = (await sim.create(spec)).remote_id
    await sim.close()
    print(json.dumps(made))

asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
"""


def test_two_processes_creating_the_same_servers_make_each_once(tmp_path: Path) -> None:
    path = tmp_path / "shared" / "sim.db"
    count = 500
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(path), str(seed), str(count)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in (1, 2)
    ]
    results = []
    for w in workers:
        out, err = w.communicate(timeout=120)
        assert w.returncode == 0, err
        results.append(json.loads(out))

    # Both workers were told the same remote id for every canopy id ...
    assert results[0] == results[1]
    assert len(results[0]) == count

    # ... and the cloud holds exactly one server per canopy id.
    async def servers() -> list[str | None]:
        sim = SimCompute("shared", SimSettings(), path, FakeClock(), 0)
        try:
            return [s.canopy_id for s in await sim.all_servers()]
        finally:
            await sim.close()

    canopy_ids = asyncio.run(servers())
    assert len(canopy_ids) == count
    assert set(canopy_ids) == set(results[0])
