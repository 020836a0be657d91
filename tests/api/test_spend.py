"""Spend is kept in micro-units and shown as exact decimal amounts, however many claims
come and go."""

from __future__ import annotations

import json

from sqlalchemy import select, update

from canopy.store.models import Claim, FlavorMapping

from .conftest import Api


async def test_spend_stays_exact_after_many_claims_and_releases(api: Api) -> None:
    """Public's m1.small costs 0.1/3 an hour (0.033333 to the micro-unit). 26 servers burst
    to public, 25 are deleted: what is left is exactly one server's price."""
    async with api.plane.db.session() as s:
        await s.execute(
            update(FlavorMapping)
            .where(FlavorMapping.cloud == "public")
            .values(price_per_hour_micros=33_333)
        )
    ids = await api.place(32)  # 6 fill private to the burst threshold, 26 burst
    public = [sv.id for sv in await api.plane.servers() if sv.cloud == "public"]
    assert len(public) == 26

    r = await api.client.get("/canopy/v1/spend")
    assert '"burst_per_hour":0.866658' in r.text.replace(" ", "")

    for sid in public[1:]:
        await api.plane.service.delete(api.plane.ctx, sid)

    async def released() -> bool:
        async with api.plane.db.read() as s:
            left = (await s.execute(select(Claim.server_id).where(Claim.cloud == "public"))).all()
        return len(left) == 1

    await api.plane.run_until(released)
    r = await api.client.get("/canopy/v1/spend")
    text = r.text.replace(" ", "")
    # The JSON numbers are the exact decimal amounts, written once from the integers.
    assert '"burst_per_hour":0.033333' in text and '"total_per_hour":0.033333' in text
    assert '"headroom_per_hour":49.966667' in text and '"cap_per_hour":50.0' in text
    spend = json.loads(r.text)
    assert {c["name"]: c["spend_per_hour"] for c in spend["clouds"]} == {
        "private": 0.0,
        "public": 0.033333,
    }
    r = await api.client.get("/canopy/v1/clouds/public")
    assert '"spend_per_hour":0.033333' in r.text.replace(" ", "")
    assert len(ids) == 32
