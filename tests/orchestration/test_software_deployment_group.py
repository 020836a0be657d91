"""OS::Heat::SoftwareDeploymentGroup: one deployment per server of its map, each waiting
for its own agent's signal; the plural attributes map each name to its member's value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from canopy.orchestration.outputs import bound_of, outputs
from tests.controllers.harness import Plane, make_plane

from .helpers import CLOUDS, create, hot, resources, send_signal, server, settle, stack
from .test_groups import update


def grouped(names: list[str], kind: str = "OS::Heat::SoftwareDeploymentGroup") -> dict[str, Any]:
    servers = {f"vm_{n}": server(user_data_format="SOFTWARE_CONFIG") for n in names}
    return hot(
        {
            "config": {
                "type": "OS::Heat::SoftwareConfig",
                "properties": {"config": "#!/bin/sh\n", "outputs": [{"name": "result"}]},
            },
            **servers,
            "deploys": {
                "type": kind,
                "properties": {
                    "config": {"get_resource": "config"},
                    "servers": {n: {"get_resource": f"vm_{n}"} for n in names},
                    "input_values": {"x": 1},
                },
            },
        },
        outputs={
            "stdouts": {"value": {"get_attr": ["deploys", "deploy_stdouts"]}},
            "codes": {"value": {"get_attr": ["deploys", "deploy_status_codes"]}},
            "results": {"value": {"get_attr": ["deploys", "result"]}},
        },
    )


async def _waiting(p: Plane, sid: str, members: set[str]) -> None:
    async def there() -> bool:
        rows = await resources(p, sid)
        going = {n for n, r in rows.items() if r.status == "IN_PROGRESS" and n in members}
        return going == members

    await p.run_until(there)


async def test_each_server_gets_its_deployment_and_the_group_maps_their_results(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "sdg", grouped(["a", "b"]))
        await _waiting(p, sid, {"deploys.a", "deploys.b"})
        rows = await resources(p, sid)
        for n in ("a", "b"):
            sd = rows[f"deploys.{n}"].data["sd"]
            assert sd["server_id"] == rows[f"vm_{n}"].server_id
            inputs = {i["name"]: i["value"] for i in sd["config"]["inputs"]}
            assert inputs["x"] == 1
            assert f"/resources/deploys.{n}/signal?signal_token=" in inputs["deploy_signal_id"]
        await send_signal(p, sid, "deploys.a", {"deploy_stdout": "A", "deploy_status_code": 0})
        for _ in range(3):
            await p.step()
        assert (await resources(p, sid))["deploys"].status == "IN_PROGRESS"  # b still runs
        body = {"deploy_stdout": "B", "deploy_status_code": "0", "result": "rb"}
        await send_signal(p, sid, "deploys.b", body)
        done = await settle(p, sid)
        assert (done.action, done.status) == ("CREATE", "COMPLETE"), done.status_reason
        outs = {o["output_key"]: o["output_value"] for o in await _outputs(p, sid)}
        assert outs["stdouts"] == {"a": "A", "b": "B"}
        assert outs["codes"] == {"a": 0, "b": "0"}
        assert outs["results"] == {"a": None, "b": "rb"}

        # A server taken out of the map takes its deployment with it.
        await update(p, sid, grouped(["a"]))
        done = await settle(p, sid)
        assert (done.action, done.status) == ("UPDATE", "COMPLETE"), done.status_reason
        rows = await resources(p, sid)
        assert "deploys.b" not in rows and "vm_b" not in rows
    finally:
        await p.close()


async def test_a_failed_member_fails_the_structured_group(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "sdgfail", grouped(["a"], "OS::Heat::StructuredDeployments"))
        await _waiting(p, sid, {"deploys.a"})
        await send_signal(p, sid, "deploys.a", {"deploy_status_code": 2})
        done = await settle(p, sid)
        assert done.status == "FAILED"
        assert "Deployment exited with non-zero status code: 2" in done.status_reason
    finally:
        await p.close()


async def _outputs(p: Plane, sid: str) -> list[dict[str, Any]]:
    found = await stack(p, sid)
    rows = list((await resources(p, sid)).values())
    return outputs(bound_of(found, p.settings.identity.region), rows)
