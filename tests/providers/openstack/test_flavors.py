"""Choosing a child's flavor for a canopy flavor."""

from __future__ import annotations

from canopy.domain.specs import Resources
from canopy.providers.openstack.flavors import named, nearest_fit, offering

FLAVORS = [
    {"id": "1", "name": "m1.tiny", "vcpus": 1, "ram": 512, "disk": 1},
    {"id": "2", "name": "m1.small", "vcpus": 1, "ram": 2048, "disk": 20},
    {"id": "3", "name": "m1.medium", "vcpus": 2, "ram": 4096, "disk": 40},
    {"id": "9", "name": "bfv.medium", "vcpus": 2, "ram": 4096, "disk": 0},
    {
        "id": "7",
        "name": "gone",
        "vcpus": 1,
        "ram": 1024,
        "disk": 10,
        "OS-FLV-DISABLED:disabled": True,
    },
]


def test_nearest_fit_is_the_smallest_with_room() -> None:
    assert nearest_fit(FLAVORS, Resources(1, 600, 1))["name"] == "m1.small"  # type: ignore[index]
    # A flavor with no disk fits any disk (the image sizes the root disk).
    assert nearest_fit(FLAVORS, Resources(2, 4000, 80))["name"] == "bfv.medium"  # type: ignore[index]
    assert nearest_fit(FLAVORS, Resources(4, 1, 1)) is None


def test_named_by_id_first_then_by_name() -> None:
    assert named(FLAVORS, "3")["name"] == "m1.medium"  # type: ignore[index]
    assert named(FLAVORS, "m1.tiny")["id"] == "1"  # type: ignore[index]
    assert named(FLAVORS, "nope") is None


def test_offering() -> None:
    o = offering(FLAVORS[2], 0.25)
    assert (o.name, o.vcpus, o.ram_mb, o.disk_gb, o.price_per_hour) == (
        "m1.medium",
        2,
        4096,
        40,
        0.25,
    )
