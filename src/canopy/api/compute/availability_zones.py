"""Nova: availability zones. Every enabled cloud is a zone of the same name.

A zone is available when its cloud is healthy and not blocklisted for capacity. The detail
view answers everyone (OSC would fall back on a 403, at the cost of a request); admins get
one host per zone, named after the cloud, with a `nova-compute` service, and others get
`hosts: null` as in the plain list.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import select

from canopy.api.auth import AuthDep
from canopy.api.compute.common import perfect_time
from canopy.api.compute.microversion import VersionDep
from canopy.api.deps import ClockDep, ReadSessionDep
from canopy.store.models import Cloud

router = APIRouter()


async def _zones(s: ReadSessionDep) -> list[Cloud]:
    q = select(Cloud).where(Cloud.enabled.is_(True)).order_by(Cloud.tier, Cloud.name)
    return list((await s.execute(q)).scalars())


def _available(c: Cloud, now: Any) -> bool:
    blocked = c.blocklisted_until is not None and c.blocklisted_until > now
    return bool(c.healthy) and not blocked


@router.get("/os-availability-zone", summary="List availability zones (one per cloud)")
async def list_zones(
    _v: VersionDep, _ctx: AuthDep, s: ReadSessionDep, clock: ClockDep
) -> dict[str, Any]:
    now = clock.now()
    return {
        "availabilityZoneInfo": [
            {"zoneName": c.name, "zoneState": {"available": _available(c, now)}, "hosts": None}
            for c in await _zones(s)
        ]
    }


@router.get("/os-availability-zone/detail", summary="Availability zones with their hosts")
async def list_zones_detail(
    _v: VersionDep, ctx: AuthDep, s: ReadSessionDep, clock: ClockDep
) -> dict[str, Any]:
    now = clock.now()
    out = []
    for c in await _zones(s):
        available = _available(c, now)
        hosts: dict[str, Any] | None = None
        if ctx.is_cloud_admin:
            hosts = {
                c.name: {
                    "nova-compute": {
                        "available": available,
                        "active": bool(c.enabled),
                        "updated_at": perfect_time(c.last_ok_at),
                    }
                }
            }
        out.append({"zoneName": c.name, "zoneState": {"available": available}, "hosts": hosts})
    return {"availabilityZoneInfo": out}
