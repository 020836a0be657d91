"""Which of a child's flavors a canopy flavor boots as: by explicit map, else nearest fit."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from canopy.domain.specs import Offering, Resources


def offering(flavor: Mapping[str, Any], price_per_hour: float) -> Offering:
    """A Nova flavor ({id, name, vcpus, ram, disk}) as an offering."""
    return Offering(
        name=str(flavor.get("name") or flavor["id"]),
        vcpus=int(flavor.get("vcpus") or 0),
        ram_mb=int(flavor.get("ram") or 0),
        disk_gb=int(flavor.get("disk") or 0),
        price_per_hour=price_per_hour,
    )


def named(flavors: Iterable[Mapping[str, Any]], wanted: str) -> Mapping[str, Any] | None:
    """The flavor whose id is `wanted`, else the one whose name is."""
    listed = list(flavors)
    for f in listed:
        if str(f.get("id")) == wanted:
            return f
    for f in listed:
        if f.get("name") == wanted:
            return f
    return None


def nearest_fit(flavors: Iterable[Mapping[str, Any]], want: Resources) -> Mapping[str, Any] | None:
    """The smallest enabled flavor with at least `want`'s vcpus, RAM and disk.

    A flavor whose disk is 0 fits any disk (Nova sizes the root disk from the image).
    Smallest is by vcpus, then RAM, then disk, then name, so the choice is stable.
    """
    fits = [
        f
        for f in flavors
        if not f.get("OS-FLV-DISABLED:disabled")
        and int(f.get("vcpus") or 0) >= want.vcpus
        and int(f.get("ram") or 0) >= want.ram_mb
        and (int(f.get("disk") or 0) >= want.disk_gb or int(f.get("disk") or 0) == 0)
    ]
    if not fits:
        return None
    return min(
        fits,
        key=lambda f: (
            int(f.get("vcpus") or 0),
            int(f.get("ram") or 0),
            int(f.get("disk") or 0),
            str(f.get("name")),
        ),
    )
