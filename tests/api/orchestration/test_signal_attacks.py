"""Hostile signals: what a token holder may send and what must never follow from it (a 500
on a later read, a signal landing on a resource it was not sent to, ...)."""

from __future__ import annotations

import httpx

from tests.api.conftest import Api
from tests.orchestration.helpers import settle

from .test_signals import path_of
from .test_software_deployment_api import _create, _deploying, base, template
from .test_stacks import assert_heat_fault


def _anonymous(api: Api) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api.app), base_url="http://canopy.test"
    )


async def test_nan_and_infinity_in_a_signal_are_a_400_on_every_database(api: Api) -> None:
    """JSON has no NaN or Infinity, but Python's parser takes them: SQLite stored them and
    the stack's outputs (a deployment's stdout) then could not be written as JSON (a 500
    on every later `stack show`); PostgreSQL refused them at commit."""
    sid = await _create(api, "nan", template())
    deployed = await _deploying(api, "nan", sid)
    url = next(i["value"] for i in deployed["inputs"] if i["name"] == "deploy_signal_id")
    async with _anonymous(api) as agent:
        for body in (
            b'{"deploy_stdout": NaN, "deploy_status_code": 0}',
            b'{"deploy_stdout": [Infinity], "deploy_status_code": 0}',
            b'{"deploy_status_code": -Infinity}',
        ):
            assert_heat_fault(await agent.post(path_of(url), content=body), 400)
        r = await agent.post(path_of(url), json={"deploy_stdout": "ok", "deploy_status_code": 0})
        assert r.status_code == 200, r.text
    done = await settle(api.plane, sid)
    assert done.status == "COMPLETE", done.status_reason
    r = await api.client.get(base(api, "nan", sid))
    assert r.status_code == 200, r.text
    outputs = {o["output_key"]: o["output_value"] for o in r.json()["stack"]["outputs"]}
    assert outputs["stdout"] == "ok"
