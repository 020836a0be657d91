"""Delivery ids from a user are bounded ASCII integers: 400, never a 500."""

from __future__ import annotations

from tests.api.conftest import Api

SUBS = "/canopy/v1/subscriptions"
HOOK = {"kind": "webhook", "url": "https://hooks.example.com/canopy"}


async def test_marker_unicode_digit(api: Api) -> None:
    r = await api.client.post(SUBS, json=HOOK)
    sid = r.json()["id"]
    r = await api.client.get(f"{SUBS}/{sid}/deliveries", params={"marker": "²"})
    assert r.status_code == 400, (r.status_code, r.text)


async def test_marker_huge(api: Api) -> None:
    r = await api.client.post(SUBS, json=HOOK)
    sid = r.json()["id"]
    r = await api.client.get(f"{SUBS}/{sid}/deliveries", params={"marker": "9" * 20})
    assert r.status_code == 400, (r.status_code, r.text)
    r = await api.client.get(f"{SUBS}/{sid}/deliveries", params={"marker": str(2**63 - 1)})
    assert r.status_code == 200 and r.json()["items"] == [], (r.status_code, r.text)


async def test_replay_huge_id(api: Api) -> None:
    r = await api.client.post(SUBS, json=HOOK)
    sid = r.json()["id"]
    r = await api.client.post(f"{SUBS}/{sid}/replay", json={"deliveries": [10**30]})
    assert r.status_code == 400, (r.status_code, r.text)
    r = await api.client.post(f"{SUBS}/{sid}/replay", json={"deliveries": [2**63 - 1]})
    assert r.status_code == 200 and r.json() == {"count": 0}, (r.status_code, r.text)
