"""Canopy's share of a cloud: the cloud's total less what others use there.

A cloud reports its total (quota, or hypervisors) and what is free. What is in use is
total - free; part of it is canopy's own servers, the rest belongs to others (servers
canopy did not create). Canopy may fill the total less the others' use: its own use plus
what is free. Pure arithmetic; which of canopy's servers count as its own is the caller's
choice (controllers/inventory.py, docs/architecture.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from canopy.domain.specs import Capacity


@dataclass(frozen=True, slots=True)
class Share:
    """One dimension of a cloud as canopy sees it; None means unbounded or not known.

    `total` is the cloud's, `others` what servers canopy did not create use of it (None:
    the cloud does not say what is free) and `canopy` what canopy may fill.
    """

    total: int | None
    others: int | None
    canopy: int | None


@dataclass(frozen=True, slots=True)
class Shares:
    """Canopy's share of a cloud in each dimension."""

    vcpus: Share
    ram_mb: Share
    instances: Share


def share(total: int | None, free: int | None, own: int) -> Share:
    """Split one dimension: `own` is canopy's use the cloud surely counts in `total - free`.

    Others use what is in use less canopy's own, never less than nothing (canopy counting
    more than the cloud does, e.g. a server the cloud already let go) nor more than the
    total (a cloud reporting less than nothing free); canopy may fill the rest of the
    total, so `others + canopy == total` and neither is negative. With `free` unknown,
    canopy may fill the whole total, as before the cloud said more.
    """
    if total is None:
        return Share(None, None, None)
    if free is None:
        return Share(total, None, total)
    others = min(max(0, total), max(0, total - free - own))
    return Share(total, others, max(0, total) - others)


def total_of(canopy: int | None, others: int | None) -> int | None:
    """The cloud's total back from a recorded share (`canopy + others`)."""
    if canopy is None or others is None:
        return canopy
    return canopy + others


def shares(capacity: Capacity, vcpus: int, ram_mb: int, instances: int) -> Shares:
    """Canopy's share of a cloud that reported `capacity`, its own use being the rest."""
    c = capacity
    return Shares(
        vcpus=share(c.vcpus_total, c.vcpus_free, vcpus),
        ram_mb=share(c.ram_mb_total, c.ram_mb_free, ram_mb),
        instances=share(c.instances_total, c.instances_free, instances),
    )
