"""`POST /canopy/v1/leases/find-slot` over HTTP: the slot it finds is one a lease create
accepts, and a minute earlier is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from canopy.api.app import create_app
from tests.api.conftest import assert_fault
from tests.api.tokens import caller
from tests.controllers.harness import START, Plane, make_plane
from tests.reservations.helpers import PRIVATE_ONLY, body

URL = "/canopy/v1/leases/find-slot"
LEASES = "/reservation/v1/leases"


def hm(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M")


@pytest.fixture
async def served(db_url: str, tmp_path: Path) -> AsyncIterator[tuple[Plane, httpx.AsyncClient]]:
    """One private cloud of 8 vcpus / 16 GB, and a reader's and a member's tokens."""
    plane = await make_plane(db_url, tmp_path, toml=PRIVATE_ONLY)
    app = create_app(settings=plane.settings, db=plane.db, clock=plane.clock)
    member = await caller(plane.db, plane.clock, project="demo", user="ann", role="member")
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://canopy.test",
            headers=member.headers,
        ) as c:
            yield plane, c
    finally:
        await plane.close()


def ask(**kw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"vcpus": 1, "memory_mb": 1024, "count": 4, "duration": "1h"}
    out.update(kw)
    return out


async def test_the_slot_found_is_accepted_and_a_minute_earlier_is_not(
    served: tuple[Plane, httpx.AsyncClient],
) -> None:
    _, c = served
    one, three = START + timedelta(hours=1), START + timedelta(hours=3)
    r = await c.post(LEASES, json=body("busy", one, three, amount=6))
    assert r.status_code == 201, r.text
    # 4 more fit only once the 6 are gone: at 03:00, not in [00:30, 01:30) nor later.
    r = await c.post(URL, json=ask(after=hm(START + timedelta(minutes=30))))
    assert r.status_code == 200, r.text
    got = r.json()
    slot = got["slot"]
    assert slot["start_date"] == "2026-01-01 03:00" and slot["end_date"] == "2026-01-01 04:00"
    assert [(x["cloud"], x["amount"]) for x in slot["clouds"]] == [("private", 4)]
    assert slot["cost_per_hour"] == 0.0 and slot["cost"] == 0.0
    assert got["reason"].startswith("Not enough resources available")  # at 00:30
    assert got["searched"]["complete"] is True
    assert got["searched"]["candidates"] == got["searched"]["examined"] == 2
    assert got["size"] == {
        "count": 4,
        "vcpus": 1,
        "memory_mb": 1024,
        "disk_gb": 0,
        "flavor": None,
        "duration_minutes": 60,
    }
    start = datetime.strptime(slot["start_date"], "%Y-%m-%d %H:%M").replace(tzinfo=START.tzinfo)
    early = await c.post(
        LEASES,
        json=body("early", start - timedelta(minutes=1), start + timedelta(hours=1), amount=4),
    )
    assert early.status_code == 409, early.text
    ok = await c.post(LEASES, json=body("taken", start, start + timedelta(hours=1), amount=4))
    assert ok.status_code == 201, ok.text
    # ...and with those 4 held, 5 more fit only after them.
    again = await c.post(URL, json=ask(count=5, after=hm(START + timedelta(minutes=30))))
    again = again.json()
    assert again["slot"]["start_date"] == "2026-01-01 04:00"


async def test_a_flavor_by_name_and_no_slot_in_range(
    served: tuple[Plane, httpx.AsyncClient],
) -> None:
    plane, c = served
    await plane.create(4, flavor="m1.small")  # 4 open-ended claims of 1 vcpu, 2 GB
    await plane.run_until(lambda: _placed(plane, 4))
    r = await c.post(URL, json={"flavor": "m1.small", "count": 4, "duration": "2h"})
    assert r.json()["slot"]["start"].startswith("2026-01-01T00:0"), r.text
    r = await c.post(URL, json={"flavor": "m1.small", "count": 5, "duration": "2h"})
    got = r.json()
    assert got["slot"] is None, got
    assert "(4 of 5 would fit)" in got["reason"]
    assert got["searched"]["complete"] is True
    assert got["size"]["flavor"] == "m1.small" and got["size"]["memory_mb"] == 2048


async def _placed(plane: Plane, n: int) -> bool:
    return sum(s.cloud is not None for s in await plane.servers()) >= n


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"duration": "8 hours"}, "duration must be a length like"),
        ({"duration": "0m"}, "at least a minute"),
        ({"count": 0}, "count must be between 1 and 10000"),
        ({"after": "tomorrow"}, "after 'tomorrow' is not a date"),
        ({"after": "2026-01-01 00:00", "before": "2027-06-01 00:00"}, "at most 366 days"),
        ({"after": "2026-01-01 00:00", "before": "2026-01-01 00:30"}, "duration is longer"),
        ({"flavor": "m1.small"}, "Give a flavor or a size, not both"),
        ({"vcpus": None}, "Give a flavor, or a size"),
        ({"memory_mb": 0}, "memory_mb must be between 1 and"),
    ],
)
async def test_bad_requests_are_400_naming_the_field(
    served: tuple[Plane, httpx.AsyncClient], change: dict[str, Any], says: str
) -> None:
    _, c = served
    b = {k: v for k, v in ask(**change).items() if v is not None}
    r = await c.post(URL, json=b)
    assert says in assert_fault(r, 400, "badRequest")


async def test_unknown_flavor_and_unknown_field_are_400(
    served: tuple[Plane, httpx.AsyncClient],
) -> None:
    _, c = served
    r = await c.post(URL, json={"flavor": "m9.huge", "duration": "1h"})
    assert "m9.huge" in assert_fault(r, 400, "badRequest")
    r = await c.post(URL, json={**ask(), "colour": "blue"})
    assert "colour" in assert_fault(r, 400, "badRequest")
    r = await c.post(URL, json=ask(), headers={"X-Auth-Token": "nope"})
    assert_fault(r, 401, "unauthorized")
