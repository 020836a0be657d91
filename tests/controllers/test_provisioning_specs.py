"""The server spec a driver gets carries the flavor's extra specs (for the drivers that
make the flavor they boot with: the openstack driver with `manage_flavors`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from canopy.domain.specs import RemoteServer, ServerSpec
from canopy.store.models import Flavor

from .harness import make_plane


async def test_a_create_carries_its_flavor_s_extra_specs(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path)
    sent: list[ServerSpec] = []
    try:
        for name in ("private", "public"):
            sim = p.sim(name)
            real = sim.create

            async def keep(spec: ServerSpec, real: Any = real) -> RemoteServer:
                sent.append(spec)
                result: RemoteServer = await real(spec)
                return result

            sim.create = keep  # type: ignore[method-assign]
        pinned = {"hw:cpu_policy": "dedicated", "hw:numa_nodes": "1"}
        async with p.db.session() as s:
            small = await s.get(Flavor, "2")
            assert small is not None and small.name == "m1.small"
            small.extra_specs = pinned
        ids = await p.create(3, flavor="m1.small") + await p.create(1, flavor="m1.tiny")

        async def recorded() -> bool:
            rows = await p.servers()
            return all(r.remote_id is not None for r in rows) and len(rows) == 4

        await p.run_until(recorded, advance=0.1)
        by_id = {spec.canopy_id: spec for spec in sent}
        assert set(by_id) == set(ids)
        assert [by_id[i].extra_specs for i in ids] == [pinned, pinned, pinned, {}]
        assert by_id[ids[0]].flavor_name == "m1.small"
    finally:
        await p.close()
