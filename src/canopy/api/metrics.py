"""Prometheus exposition at /metrics, with per-cloud gauges read from the database per scrape."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from canopy import telemetry
from canopy.api.admin.clouds import load_clouds, server_counts, utilisation
from canopy.api.deps import DatabaseDep, SettingsDep
from canopy.config import Settings
from canopy.domain.money import to_float
from canopy.store.db import Database

log = logging.getLogger(__name__)

router = APIRouter(tags=["operations"])

SCRAPE_TIMEOUT_SECONDS = 5.0

_PER_CLOUD = (telemetry.CLOUD_UTILISATION, telemetry.CLOUD_SPEND_PER_HOUR, telemetry.CLOUD_HEALTHY)


async def refresh_gauges(db: Database, cap_micros: int) -> bool:
    """Set the database-backed gauges (two small queries); False if the database failed."""
    try:
        async with asyncio.timeout(SCRAPE_TIMEOUT_SECONDS), db.read() as s:
            clouds = await load_clouds(s)
            counts = await server_counts(s)
    except Exception as e:  # a scrape reports the failure; it never fails itself
        log.warning("metrics: cannot read the database: %s: %s", type(e).__name__, e)
        _clear()
        telemetry.DATABASE_UP.set(0)
        return False
    # No await from here on, so a concurrent scrape never sees half-set gauges.
    _clear()
    for c, _has_credentials in clouds:
        telemetry.CLOUD_UTILISATION.labels(cloud=c.name).set(utilisation(c))
        telemetry.CLOUD_SPEND_PER_HOUR.labels(cloud=c.name).set(to_float(c.spend_per_hour_micros))
        telemetry.CLOUD_HEALTHY.labels(cloud=c.name).set(1 if c.healthy else 0)
    for cloud, by_status in counts.items():
        for status, n in by_status.items():
            telemetry.SERVERS.labels(cloud=cloud, status=status).set(n)
    telemetry.SPEND_CAP_PER_HOUR.set(to_float(cap_micros))
    telemetry.DATABASE_UP.set(1)
    return True


def _clear() -> None:
    # Clouds removed from the config must not linger as stale series.
    for gauge in (*_PER_CLOUD, telemetry.SERVERS):
        gauge.clear()


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
async def metrics(db: DatabaseDep, settings: SettingsDep) -> Response:
    await refresh_gauges(db, settings.scheduler.max_spend_per_hour_micros)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


def metrics_app(db: Database, settings: Settings) -> Starlette:
    """`canopy worker`'s own listener: GET /metrics, the same exposition as the API's
    (this process's counters, and the database-backed gauges read per scrape)."""

    async def scrape(request: Request) -> Response:
        await refresh_gauges(db, settings.scheduler.max_spend_per_hour_micros)
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[Route("/metrics", scrape, methods=["GET"])])
