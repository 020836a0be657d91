"""The app factory: one FastAPI app serving every canopy endpoint on one port."""

from __future__ import annotations

import asyncio
import functools

from fastapi import APIRouter, FastAPI
from starlette.routing import BaseRoute

from canopy import __version__
from canopy.api import health, metrics
from canopy.api.admin import admin_router
from canopy.api.compute import compute_router
from canopy.api.compute.microversion import install_headers
from canopy.api.errors import install_error_handlers
from canopy.api.identity import identity_router, install_identity
from canopy.api.image import image_router, install_image
from canopy.api.openapi import install_openapi
from canopy.api.orchestration import install_orchestration, orchestration_router
from canopy.api.request_guard import install_request_guard
from canopy.api.request_id import install_request_id
from canopy.api.reservation import install_reservation, reservation_router
from canopy.api.reservation.gate import BlazarGate
from canopy.api.service_routes import served_under
from canopy.api.subscriptions import subscriptions_router
from canopy.api.token_cache import TokenCache, install_invalidation
from canopy.api.unsupported import install_unsupported
from canopy.api_first import InFlight
from canopy.config import Settings
from canopy.domain.clock import Clock
from canopy.store.db import Database
from canopy.store.wakes import WakeChannel


def create_app(
    *,
    settings: Settings,
    db: Database,
    clock: Clock,
    wake: asyncio.Event | None = None,
    wake_channel: WakeChannel | None = None,
) -> FastAPI:
    """Build the app around `db` (owned by the caller). `wake` is set after writes that
    give the controllers work, so an in-process worker reacts without waiting to poll;
    `wake_channel` carries the same to the workers of other processes (store/wakes.py)."""
    app = FastAPI(
        title="Canopy",
        version=__version__,
        description="One OpenStack-compatible control plane over many clouds.",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.db = db
    app.state.clock = clock
    app.state.wake = wake
    app.state.wake_channel = wake_channel
    app.state.token_cache = TokenCache()
    install_invalidation()
    # Middleware runs outermost-last-added. The guard comes first, so the error handlers'
    # net, the compute headers and the request id all wrap its 413s and 400s.
    install_request_guard(app, settings.api)
    app.add_middleware(BlazarGate)  # Blazar's microversion and Content-Type, around the guard
    install_error_handlers(app)
    install_headers(app)
    install_request_id(app)  # added last, so it runs first: the id exists for everything
    install_identity(app)
    install_image(app)
    install_reservation(app)
    install_orchestration(app)
    app.router.routes.extend(_routes())
    install_unsupported(app)  # after the routers: it reads their routes
    install_openapi(app)
    # Outermost of all: every request counts as in flight while any of the app serves it,
    # so sync's slices wait for it (canopy/api_first.py).
    app.add_middleware(InFlight)
    return app


@functools.cache
def _routes() -> tuple[BaseRoute, ...]:
    """Every endpoint's route, analysed once per process and shared by every app built in
    it: FastAPI analyses each endpoint's signature where its router is included, and each
    inclusion's route contexts when first matched or listed (about 0.3 s in all for
    canopy's 600 routes); a route holds no state of its app (each request reaches its
    app's state through `request.app`). They are included into a plain router, so
    `app.dependency_overrides` does not apply to them (canopy has no use for it), nor would
    a router's own lifespan or startup handlers reach the app (canopy's routers have none;
    give one to the app instead)."""
    router = APIRouter()
    router.include_router(health.router)
    router.include_router(metrics.router)
    # Each service's router is asked only for paths under its prefix (api/service_routes.py).
    router.include_router(served_under("/canopy", admin_router(), subscriptions_router()))
    router.include_router(identity_router())
    router.include_router(compute_router())
    router.include_router(image_router())
    router.include_router(reservation_router())
    router.include_router(orchestration_router())
    return tuple(router.routes)
