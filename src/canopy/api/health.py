"""Liveness with a database round trip: /healthz."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.responses import JSONResponse

from canopy.api.deps import DatabaseDep
from canopy.api.errors import fault_response

log = logging.getLogger(__name__)

router = APIRouter(tags=["operations"])

CHECK_TIMEOUT_SECONDS = 5.0


class Health(BaseModel):
    status: str
    database: str


@router.get(
    "/healthz",
    response_model=Health,
    summary="200 if the API can reach its database, else 503",
    responses={503: {"description": "The database is unreachable."}},
)
async def healthz(request: Request, db: DatabaseDep) -> Health | JSONResponse:
    try:
        # A read: on SQLite it must not take the file's write lock (BEGIN IMMEDIATE),
        # which a write transaction of this process may hold across a pause.
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            await db.ping()
    except Exception as e:  # any failure here means "not healthy", never a 500
        log.warning("health check failed: %s: %s", type(e).__name__, e)
        return fault_response(request, 503, "The database is unreachable.")
    return Health(status="ok", database="ok")
