""" "No valid host" names the filter that emptied the list, and says if waiting may help."""

from __future__ import annotations

import json

import pytest

from canopy.config import SchedulerSettings
from canopy.domain.placement import CloudSnapshot, GroupState, PlacementRequest
from canopy.scheduler import schedule

from .factories import cloud, private, public, request, settings

CASES = {
    # id: (clouds, request, settings, emptying filter, retryable)
    "disabled": ([cloud("a", enabled=False)], request(), settings(), "enabled", False),
    "unhealthy": ([cloud("a", healthy=False)], request(), settings(), "health", True),
    "blocklisted": ([cloud("a", blocklisted=True)], request(), settings(), "blocklist", True),
    "flavor": ([cloud("a", price_per_hour={})], request(), settings(), "flavor", False),
    "image": (
        [cloud("a", images=frozenset())],
        request(image_id="img"),
        settings(),
        "image",
        False,
    ),
    "unknown zone": (
        [private(), public()],
        request(availability_zone="nowhere"),
        settings(),
        "availability_zone",
        False,
    ),
    "all tried": (
        [private(), public()],
        request(excluded=frozenset({"private", "public"})),
        settings(),
        "excluded",
        False,
    ),
    "full": ([private(vcpus_claimed=8)], request(), settings(), "capacity", True),
    "over the spend cap": (
        [public(spend_per_hour=1.0)],
        request(),
        settings(max_spend_per_hour=1.0),
        "spend_cap",
        True,
    ),
    "anti-affinity impossible": (
        [private(), public()],
        request(group=GroupState("anti-affinity", ("private", "public"))),
        settings(),
        "server_group",
        False,
    ),
    # A cloud that passes every permanent check but is unhealthy makes waiting worthwhile,
    # even when another cloud fails a permanent one.
    "unhealthy beside one without the flavor": (
        [cloud("a", healthy=False), cloud("b", price_per_hour={})],
        request(),
        settings(),
        "health",
        True,
    ),
    "anti-affinity leaves only an unhealthy cloud": (
        [cloud("a"), cloud("b", healthy=False)],
        request(group=GroupState("anti-affinity", ("a",))),
        settings(),
        "health",
        True,
    ),
    "pinned to an unhealthy cloud": (
        [cloud("a", healthy=False), cloud("b")],
        request(availability_zone="a"),
        settings(),
        "health",
        True,
    ),
    "private full, public over the cap": (
        [private(vcpus_claimed=8), public(spend_per_hour=1.0)],
        request(),
        settings(max_spend_per_hour=1.0),
        "spend_cap",
        True,
    ),
}


@pytest.mark.parametrize(
    ("clouds", "req", "cfg", "name", "retryable"), CASES.values(), ids=CASES.keys()
)
def test_no_valid_host_names_the_emptying_filter(
    clouds: list[CloudSnapshot],
    req: PlacementRequest,
    cfg: SchedulerSettings,
    name: str,
    retryable: bool,
) -> None:
    d = schedule(clouds, req, cfg)

    assert d.cloud is None
    assert d.alternates == []
    assert d.retryable is retryable
    assert d.reason.startswith(f"No valid host: filter {name} removed every cloud (")
    # The pipeline stops at the filter that emptied the list.
    assert d.explanation.steps[-1].name == name
    assert d.explanation.weights == {}
    json.dumps(d.explanation.to_dict())


def test_reason_lists_each_cloud_with_its_reason() -> None:
    d = schedule([private(vcpus_claimed=8)], request(), settings())

    assert d.reason == (
        "No valid host: filter capacity removed every cloud (private: needs 1 vcpu, 0 free of 8)"
    )


def test_no_clouds_at_all() -> None:
    d = schedule([], request(), settings())

    assert (d.cloud, d.retryable) == (None, False)
    assert d.reason == "No valid host: no cloud is configured"
