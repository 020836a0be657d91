"""Zones inside a cloud: which of them a server may still go to, and which one it gets.

Placement chooses a cloud first (the filters, the weighers, the burst policy), then a zone
inside it. A zone is passed over when this server already failed there or when a capacity
error there blocklisted it for the server's flavor; a cloud none of whose zones is left
is removed by the `excluded` or `blocklist` filter, so the next attempt goes to the
cloud's other zones first, then to the next cloud.

Among the zones left, the choice spreads servers evenly without any I/O: a stable hash of
the server id picks one (an EC2 Auto Scaling group balances its AZs the same way, by
count; a hash needs no count and gives the same spread on average).
"""

from __future__ import annotations

import zlib

from canopy.domain.placement import CloudSnapshot, PlacementRequest

EVERY_ZONE = ""  # a capacity block that named no zone holds for the whole cloud


def tried_here(cloud: CloudSnapshot, request: PlacementRequest) -> set[str]:
    """The zones of `cloud` this server has already failed in."""
    return {zone for name, zone in request.tried_zones if name == cloud.name}


def all_tried(cloud: CloudSnapshot, request: PlacementRequest) -> bool:
    """Whether this server has failed in every zone of `cloud` (or in one zone of a cloud
    whose zones are not known, which cannot be told apart from the next)."""
    tried = tried_here(cloud, request)
    if not tried:
        return False
    return not cloud.zones or all(z in tried for z in cloud.zones)


def skipped(cloud: CloudSnapshot, request: PlacementRequest) -> dict[str, str]:
    """The zones of `cloud` this server may not go to now, each with the reason."""
    if not cloud.zones:
        return {}
    tried = tried_here(cloud, request)
    blocks = cloud.capacity_blocks.get(request.flavor, {})
    out: dict[str, str] = {}
    for zone in cloud.zones:
        if zone in tried:
            out[zone] = "already tried for this server"
        elif zone in blocks:
            out[zone] = f"blocklisted for {request.flavor}: {blocks[zone]}"
    return out


def blocked(cloud: CloudSnapshot, request: PlacementRequest) -> str | None:
    """Why `cloud` is blocklisted for this request's flavor, or None if a zone is left."""
    blocks = cloud.capacity_blocks.get(request.flavor)
    if not blocks:
        return None
    if EVERY_ZONE in blocks:
        return f"blocklisted for {request.flavor} after a capacity error: {blocks[EVERY_ZONE]}"
    if not cloud.zones:
        return None
    tried = tried_here(cloud, request)
    left = [z for z in cloud.zones if z not in tried]
    if left and all(z in blocks for z in left):
        return f"every zone blocklisted for {request.flavor} after capacity errors (" + (
            "; ".join(f"{z}: {blocks[z]}" for z in left) + ")"
        )
    return None


def choose(cloud: CloudSnapshot, request: PlacementRequest) -> tuple[str | None, dict[str, str]]:
    """The zone inside `cloud` for this server, and the zones passed over with why.

    None when the cloud has no zones to choose between (its driver places the server).
    The filters have made sure some zone is left when the cloud has zones.
    """
    if not cloud.zones:
        return None, {}
    passed = skipped(cloud, request)
    left = [z for z in cloud.zones if z not in passed]
    if not left:  # the filters prevent it; let the driver choose rather than fail here
        return None, passed
    return left[zlib.crc32(request.server_id.encode()) % len(left)], passed
