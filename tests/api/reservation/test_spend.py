"""A lease's burst part is held within `max_spend_per_hour` over its window: once the
window's burst budget is spent by other leases, a create that would need more is refused
(409, Blazar's body, naming the spend_cap filter) and changes nothing; the same lease over
a window where the budget is free is held."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from canopy.api.app import create_app
from canopy.domain.wake import Wake
from tests.api.conftest import CLOUDS, Api
from tests.api.reservation.test_leases import V1, _body, blazar_error
from tests.api.tokens import caller
from tests.controllers.harness import make_plane

# 1-vcpu servers cost 0.05/h on public: the cap holds two of them at any instant.
CAPPED = CLOUDS.replace("burst_threshold = 0.8", "burst_threshold = 0.8\nmax_spend_per_hour = 0.1")
assert CAPPED != CLOUDS


@pytest.fixture
async def api(db_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    plane = await make_plane(db_url, tmp_path, toml=CAPPED)
    wake = Wake()
    app = create_app(settings=plane.settings, db=plane.db, clock=plane.clock, wake=wake)
    try:
        admin = await caller(plane.db, plane.clock, project="admin", user="admin", role="admin")
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://canopy.test",
            headers=admin.headers,
        ) as c:
            yield Api(plane=plane, app=app, client=c, wake=wake, admin=admin)
    finally:
        await plane.close()


def _held(lease: dict[str, Any]) -> dict[str, int]:
    [res] = lease["reservations"]
    return {p["cloud"]: p["amount"] for p in res["placement"]}


async def test_a_lease_past_the_windows_spent_burst_budget_is_refused(api: Api) -> None:
    t0 = api.plane.clock.now()
    w1 = (t0 + timedelta(hours=1), t0 + timedelta(hours=3))
    r = await api.client.post(f"{V1}/leases", json=_body("first", *w1, amount=8))
    assert r.status_code == 201, r.text
    first = _held(r.json()["lease"])
    assert first.get("public", 0) == 2, first  # the whole budget: 2 x 0.05/h

    # Overlapping the first window: private has room for 2 more, the budget is spent.
    inside = (w1[0] + timedelta(hours=1), w1[1] + timedelta(hours=1))
    r = await api.client.post(f"{V1}/leases", json=_body("second", *inside, amount=3))
    message = blazar_error(r, 409)
    assert "(2 of 3 would fit)" in message and "spend_cap" in message, message
    assert "burst spend would reach $0.15/h > cap $0.10/h" in message, message
    names = [x["name"] for x in (await api.client.get(f"{V1}/leases")).json()["leases"]]
    assert names == ["first"]  # nothing changed

    # After the first window the budget is free again: the same lease is held.
    after = (w1[1], w1[1] + timedelta(hours=2))
    r = await api.client.post(f"{V1}/leases", json=_body("second", *after, amount=8))
    assert r.status_code == 201, r.text
    assert _held(r.json()["lease"]) == first
