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
class Use:
    """An amount in each dimension (None: not known)."""

    vcpus: int | None
    ram_mb: int | None
    instances: int | None


@dataclass(frozen=True, slots=True)
class Shares:
    """Canopy's share of a cloud in each dimension."""

    vcpus: Share
    ram_mb: Share
    instances: Share


def share(
    total: int | None,
    free: int | None,
    own: int,
    unsure: int = 0,
    previous: int | None = None,
) -> Share:
    """Split one dimension of a cloud that reported `total` and `free`.

    `own` is canopy's use the cloud surely counts in `total - free`; `unsure` is canopy's
    use it may or may not count yet (creates in flight, servers booting or being
    deleted). Others use what is in use less canopy's own: at most `in_use - own` (none of
    the unsure counted), at least that less `unsure` (all of it counted). Within that
    range the last recorded value (`previous`) stands, so canopy's own comings and goings
    do not move it; outside it, the nearer end; with no previous value, the most.

    Others never use less than nothing (canopy counting more than the cloud does, e.g. a
    server the cloud already let go) nor more than the total (a cloud reporting less than
    nothing free); canopy may fill the rest, so `others + canopy == total` and neither is
    negative. With `free` unknown canopy may fill the whole total, as before.
    """
    if total is None:
        return Share(None, None, None)
    if free is None:
        return Share(total, None, total)
    whole = max(0, total)
    most = min(whole, max(0, total - free - own))
    least = max(0, most - max(0, unsure))
    others = most if previous is None else min(most, max(least, previous))
    return Share(total, others, whole - others)


def shares(capacity: Capacity, own: Use, unsure: Use, previous: Use | None) -> Shares:
    """Canopy's share of a cloud that reported `capacity` (see `share`)."""
    c, p = capacity, previous or Use(None, None, None)
    return Shares(
        vcpus=share(c.vcpus_total, c.vcpus_free, own.vcpus or 0, unsure.vcpus or 0, p.vcpus),
        ram_mb=share(c.ram_mb_total, c.ram_mb_free, own.ram_mb or 0, unsure.ram_mb or 0, p.ram_mb),
        instances=share(
            c.instances_total,
            c.instances_free,
            own.instances or 0,
            unsure.instances or 0,
            p.instances,
        ),
    )


def total_of(canopy: int | None, others: int | None) -> int | None:
    """The cloud's total back from a recorded share (`canopy + others`)."""
    if canopy is None or others is None:
        return canopy
    return canopy + others
