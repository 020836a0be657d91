"""The ServerService dependency every servers route takes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from canopy.api.deps import ClockDep, DatabaseDep, SettingsDep
from canopy.services.servers import ServerService


async def get_service(db: DatabaseDep, settings: SettingsDep, clock: ClockDep) -> ServerService:
    return ServerService(db, settings, clock)


ServiceDep = Annotated[ServerService, Depends(get_service)]
