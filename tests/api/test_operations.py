"""The app factory, /healthz, /metrics and the OpenAPI document."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from canopy.api.app import create_app
from canopy.config import load_settings
from canopy.domain.clock import FakeClock
from canopy.store.db import Database

from .conftest import Api, assert_fault


async def test_healthz_checks_the_database(api: Api) -> None:
    r = await api.client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "database": "ok"}


async def test_healthz_answers_while_a_write_transaction_is_open(api: Api) -> None:
    """A write of this process may hold the database across a pause of the loop
    (store/loop_share.py): the health check reads, so it neither waits for it nor, on
    SQLite, takes the file's write lock (BEGIN IMMEDIATE, which would meet SQLITE_BUSY)."""
    async with api.plane.db.session() as s:
        await s.execute(text("UPDATE clouds SET tier = tier"))  # the write lock is taken
        r = await asyncio.wait_for(api.client.get("/healthz"), 2.0)
        assert r.status_code == 200, r.text


@pytest.fixture(params=["sqlite-directory", "postgres-closed-port"])
async def unreachable(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """An app whose database cannot be opened: a directory, or a port nobody listens on."""
    if request.param == "sqlite-directory":
        (tmp_path / "a-directory").mkdir()
        url = f"sqlite+aiosqlite:///{tmp_path / 'a-directory'}"
    else:
        url = "postgresql+asyncpg://postgres@127.0.0.1:1/nothing"
    settings = load_settings(env={}, overrides={"data_dir": str(tmp_path)})
    db = Database(url)
    app = create_app(settings=settings, db=db, clock=FakeClock())
    try:
        # A token, so that checking it is what finds the database gone.
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://canopy.test",
            headers={"X-Auth-Token": "some-token"},
        ) as client:
            yield client
    finally:
        await db.dispose()


async def test_healthz_is_503_when_the_database_is_unreachable(
    unreachable: httpx.AsyncClient,
) -> None:
    r = await unreachable.get("/healthz")
    assert "database" in assert_fault(r, 503, "serviceUnavailable")


async def test_requests_are_503_when_the_database_is_unreachable(
    unreachable: httpx.AsyncClient,
) -> None:
    r = await unreachable.get("/canopy/v1/clouds")
    assert_fault(r, 503, "serviceUnavailable")
    r = await unreachable.post("/canopy/v1/images", json={"name": "x"})
    assert_fault(r, 503, "serviceUnavailable")


async def test_metrics_survive_an_unreachable_database(unreachable: httpx.AsyncClient) -> None:
    r = await unreachable.get("/metrics")
    assert r.status_code == 200
    assert "canopy_database_up 0.0" in r.text
    assert "canopy_cloud_utilisation{" not in r.text


def _sample(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = rf"^{re.escape(name)}\{{{re.escape(want)}\}} (\S+)$"
    m = re.search(pattern, text, flags=re.MULTILINE)
    assert m, f"{name}{{{want}}} not in metrics"
    return float(m.group(1))


async def test_metrics_expose_per_cloud_gauges(api: Api) -> None:
    await api.place(8)  # six on private, two burst to public
    r = await api.client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    for name in (
        "canopy_cloud_utilisation",
        "canopy_cloud_spend_per_hour",
        "canopy_cloud_healthy",
        "canopy_servers",
    ):
        assert f"# TYPE {name} gauge" in text
    assert _sample(text, "canopy_cloud_utilisation", cloud="private") == 0.75
    assert 0.0 < _sample(text, "canopy_cloud_utilisation", cloud="public") < 0.01
    assert _sample(text, "canopy_cloud_spend_per_hour", cloud="private") == 0.0
    assert _sample(text, "canopy_cloud_spend_per_hour", cloud="public") == 0.1
    assert _sample(text, "canopy_cloud_healthy", cloud="private") == 1.0
    assert _sample(text, "canopy_cloud_healthy", cloud="public") == 1.0
    on_private = re.findall(r'^canopy_servers\{cloud="private",status="(\w+)"\} (\S+)$', text, re.M)
    assert sum(float(n) for _, n in on_private) == 6
    assert "canopy_database_up 1.0" in text
    assert "canopy_placements_total" in text  # the process counters are there too


async def test_metrics_follow_the_database_between_scrapes(api: Api) -> None:
    before = (await api.client.get("/metrics")).text
    assert _sample(before, "canopy_cloud_utilisation", cloud="private") == 0.0
    assert "canopy_servers{" not in before
    await api.place(2)
    after = (await api.client.get("/metrics")).text
    assert _sample(after, "canopy_cloud_utilisation", cloud="private") == 0.25


async def test_openapi_and_docs(api: Api) -> None:
    r = await api.client.get("/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["info"]["title"] == "Canopy"
    for path in (
        "/healthz",
        "/metrics",
        "/canopy/v1/clouds",
        "/canopy/v1/clouds/{name}",
        "/canopy/v1/spend",
        "/canopy/v1/placements",
        "/canopy/v1/servers/{server_id}/placements",
        "/canopy/v1/flavors",
        "/canopy/v1/images",
        "/canopy/v1/images/{image_id}/map/{cloud}",
        "/canopy/v1/servers",
        "/canopy/v1/servers/{server_id}",
    ):
        assert path in doc["paths"], path
    cloud_view = doc["components"]["schemas"]["CloudView"]["properties"]
    assert "has_credentials" in cloud_view and "credentials" not in cloud_view
    r = await api.client.get("/docs")
    assert r.status_code == 200 and "swagger" in r.text.lower()


async def test_apps_share_nothing_and_wake_is_optional(api: Api) -> None:
    other = create_app(settings=api.plane.settings, db=api.plane.db, clock=api.plane.clock)
    assert other.state.wake is None and api.app.state.wake is api.wake
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=other), base_url="http://other", headers=api.admin.headers
    ) as client:
        r = await client.post("/canopy/v1/images", json={"name": "no-wake"})
        assert r.status_code == 201
        assert r.json()["name"] == "no-wake"
    assert not api.wake.is_set()


async def test_a_failed_write_wakes_nobody(api: Api) -> None:
    api.wake.clear()
    r = await api.client.post("/canopy/v1/images", json={"name": "cirros"})
    assert r.status_code == 409
    assert not api.wake.is_set()
