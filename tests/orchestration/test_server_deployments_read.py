"""A server's `deployments` (what its agent polls, every 30 s on every server) are read
from that server's deployment rows only, not from every deployment row of the project."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import event

from canopy.orchestration.resources.software_deployment import server_deployments
from canopy.store.models import StackResource
from tests.controllers.harness import make_plane

from .helpers import CLOUDS, create, hot, settle


async def test_a_servers_metadata_loads_its_own_deployments_only(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    names = [f"s{i}" for i in range(20)]
    try:
        sid = await create(
            p,
            "many",
            hot(
                {
                    "config": {"type": "OS::Heat::SoftwareConfig", "properties": {"config": "x"}},
                    "deploys": {
                        "type": "OS::Heat::SoftwareDeploymentGroup",
                        "properties": {
                            "config": {"get_resource": "config"},
                            "servers": {n: f"server-{n}" for n in names},
                            "signal_transport": "NO_SIGNAL",
                        },
                    },
                }
            ),
        )
        assert (await settle(p, sid)).status == "COMPLETE"
        loaded: list[str] = []

        def count(target: StackResource, _ctx: object) -> None:
            loaded.append(target.name)

        event.listen(StackResource, "load", count)
        try:
            async with p.db.read() as s:
                found = await server_deployments(s, p.ctx.project_id, "server-s7")
        finally:
            event.remove(StackResource, "load", count)
        assert [c["name"] for c in found] == [found[0]["name"]]
        assert loaded == ["deploys.s7"]
    finally:
        await p.close()
