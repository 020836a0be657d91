"""Numbers in a cloud added at run time are bounded: a 400 naming the field, never a 500
and never a worker that can no longer take its inventory."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.api.conftest import Api

SIM = {"name": "extra", "driver": "sim", "options": {"hosts": 2, "host_vcpus": 4}}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**SIM, "tier": 10**30}, "tier"),
        ({**SIM, "options": {"price_per_vcpu_hour": "Infinity"}}, "price_per_vcpu_hour"),
        ({**SIM, "options": {"price_per_vcpu_hour": "NaN"}}, "price_per_vcpu_hour"),
        ({**SIM, "options": {"hosts": 10**30}}, "hosts"),
        ({**SIM, "options": {"host_vcpus": 10**9}}, "host_vcpus"),
    ],
    ids=["tier", "inf_price", "nan_price", "hosts", "host_vcpus"],
)
async def test_a_number_out_of_bounds_is_a_400_naming_it(
    api: Api, body: dict[str, Any], field: str
) -> None:
    raw = json.dumps(body).replace('"Infinity"', "Infinity").replace('"NaN"', "NaN")
    r = await api.client.post(
        "/canopy/v1/clouds", content=raw, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400, (r.status_code, r.text)
    assert field in r.text
    assert (await api.client.get("/canopy/v1/clouds/extra")).status_code == 404


async def test_a_huge_tier_in_a_change_is_a_400(api: Api) -> None:
    assert (await api.client.post("/canopy/v1/clouds", json=SIM)).status_code == 201
    r = await api.client.patch("/canopy/v1/clouds/extra", json={"tier": 10**30})
    assert r.status_code == 400, r.text
    shown = (await api.client.get("/canopy/v1/clouds/extra")).json()
    assert shown["tier"] == 0
