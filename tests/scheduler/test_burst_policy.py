"""The burst rule: fill tier 0 while it stays at or below the threshold, then burst."""

from __future__ import annotations

import pytest

from canopy.config import SchedulerSettings
from canopy.domain.money import to_micros
from canopy.domain.placement import CloudSnapshot
from canopy.domain.specs import Resources
from canopy.scheduler import schedule
from canopy.scheduler.policy import tier_loads

from .factories import PUBLIC_PRICE, cloud, place_many, private, public, request, settings


def test_servers_1_to_6_stay_private_and_7_on_burst_to_public() -> None:
    clouds = [private(vcpus=8), public()]
    decisions = place_many(clouds, 10, settings(burst_threshold=0.8))

    assert [d.cloud for d in decisions] == ["private"] * 6 + ["public"] * 4
    # 6/8 = 75% is at or below 80%; 7/8 = 87.5% is over it.
    assert decisions[5].explanation.policy == (
        "tier 0 (private) stays at 75% <= burst threshold 80% after placement; "
        "chose private (only candidate in tier 0 (private), weight -0.50)"
    )
    assert decisions[6].explanation.policy == (
        "tier 0 (private) would reach 88% > burst threshold 80%: burst to tier 1, "
        "which has no capacity limit; chose public (only candidate in tier 1, weight -3.00)"
    )
    assert decisions[5].alternates == ["public"]
    assert decisions[6].alternates == ["private"]
    assert decisions[6].reason == decisions[6].explanation.policy
    assert (clouds[0].vcpus_claimed, clouds[1].instances_claimed) == (6, 4)
    assert clouds[1].spend_per_hour_micros == 4 * to_micros(PUBLIC_PRICE)


@pytest.mark.parametrize(
    ("burst", "cfg"),
    [
        (public(spend_per_hour=1.0), settings(max_spend_per_hour=1.0)),  # over the spend cap
        (public(vcpus_capacity=4, vcpus_claimed=4), settings()),  # full
    ],
    ids=["public over the spend cap", "public full"],
)
def test_when_public_cannot_take_it_private_fills_past_the_threshold(
    burst: CloudSnapshot, cfg: SchedulerSettings
) -> None:
    decisions = place_many([private(vcpus=8), burst], 9, cfg)

    assert [d.cloud for d in decisions] == ["private"] * 8 + [None]
    assert decisions[6].explanation.policy == (
        "no tier stays at or below burst threshold 80% after placement "
        "(tier 0 (private) would reach 88%): fall back to tier 0 (private), the lowest "
        "with a candidate; chose private (only candidate in tier 0 (private), weight 0.00)"
    )
    assert "would reach 100%" in decisions[7].explanation.policy
    assert decisions[8].retryable is True
    assert decisions[8].reason.startswith("No valid host: filter")


def test_the_threshold_is_on_the_whole_tier_not_one_cloud() -> None:
    # Two private clouds of 4: the tier holds 8, so 6 go private however they spread.
    clouds = [private("p1", vcpus=4), private("p2", vcpus=4), public()]
    decisions = place_many(clouds, 8, settings(burst_threshold=0.8))

    assert [d.cloud for d in decisions].count("public") == 2
    assert all(d.cloud == "public" for d in decisions[6:])
    assert clouds[0].vcpus_claimed + clouds[1].vcpus_claimed == 6


def test_unusable_private_capacity_is_not_headroom() -> None:
    # A disabled private cloud's empty capacity must not keep the tier "under threshold".
    clouds = [
        private("live", vcpus=8, vcpus_claimed=6),
        private("off", vcpus=100, enabled=False),
        public(),
    ]

    d = schedule(clouds, request(), settings(burst_threshold=0.8))

    assert d.cloud == "public"


def test_lowest_tier_under_threshold_wins_over_a_cheaper_higher_tier() -> None:
    pricey_private = cloud("private", 0, vcpus_capacity=8, price_per_hour={"m1.small": 5.0})
    d = schedule([pricey_private, public()], request(), settings())

    assert d.cloud == "private"


def test_an_empty_lower_tier_is_explained_and_the_next_tier_is_used() -> None:
    clouds = [private(vcpus_claimed=8), public("public-1"), cloud("public-2", 2)]
    d = schedule(clouds, request(), settings())

    assert d.cloud == "public-1"
    assert d.alternates == ["public-2"]
    assert d.explanation.policy.startswith(
        "tier 0 (private) has no candidate left after the filters: burst to tier 1, "
        "which has no capacity limit;"
    )


def test_alternates_follow_the_same_rule_tier_first_then_weight() -> None:
    clouds = [
        private("private", vcpus_claimed=7),  # would reach 100%: over the threshold
        cloud("dear", 1, price_per_hour={"m1.small": 0.3}),
        cloud("cheap", 1, price_per_hour={"m1.small": 0.1}),
        cloud("far", 2, price_per_hour={"m1.small": 0.01}),
    ]
    d = schedule(clouds, request(), settings())

    assert (d.cloud, d.alternates) == ("cheap", ["dear", "far", "private"])
    assert d.explanation.policy == (
        "tier 0 (private) would reach 100% > burst threshold 80%: burst to tier 1, which has "
        "no capacity limit; chose cheap (cheapest in tier 1, weight -1.33)"
    )


def test_a_zone_request_skips_the_policy_but_not_the_filters() -> None:
    cfg = settings(max_spend_per_hour=1.0)
    # Private is well under the threshold, yet the pinned public cloud is chosen.
    pinned = schedule([private(), public()], request(availability_zone="public"), cfg)
    assert pinned.cloud == "public"
    assert pinned.explanation.policy == (
        "pinned to availability zone public; chose public (only candidate, weight 0.00)"
    )

    # Pinned to private although it would go over the threshold: no burst.
    full = schedule([private(vcpus_claimed=7), public()], request(availability_zone="private"), cfg)
    assert full.cloud == "private"

    # The spend cap still applies to a pinned request.
    capped = schedule(
        [private(), public(spend_per_hour=1.0)], request(availability_zone="public"), cfg
    )
    assert capped.cloud is None
    assert capped.retryable is True
    assert capped.explanation.steps[-1].name == "spend_cap"


def test_tier_loads_take_the_tightest_bounded_dimension() -> None:
    need = Resources(vcpus=1, ram_mb=1000, instances=1)
    clouds = [
        CloudSnapshot(
            "a", 0, vcpus_capacity=10, ram_mb_capacity=10_000, vcpus_claimed=2, ram_mb_claimed=6_000
        ),
        CloudSnapshot("b", 0, vcpus_capacity=10, ram_mb_capacity=10_000, instances_capacity=None),
        CloudSnapshot("c", 1, vcpus_capacity=10),
        CloudSnapshot("d", 1),  # unbounded: makes tier 1 unbounded in vcpus too
        CloudSnapshot("e", 2, instances_capacity=4, instances_claimed=1),
    ]

    loads = tier_loads(clouds, {0, 1, 2}, need)

    assert loads == {0: pytest.approx(7_000 / 20_000), 1: None, 2: pytest.approx(2 / 4)}


def test_same_input_gives_the_same_decision() -> None:
    def clouds() -> list[CloudSnapshot]:
        return [
            private("p1", vcpus_claimed=3),
            private("p2", vcpus_claimed=3),
            public("x"),
            public("y"),
            cloud("z", 2),
        ]

    first = schedule(clouds(), request(), settings())
    again = schedule(clouds(), request(), settings())
    shuffled = schedule(list(reversed(clouds())), request(), settings())

    assert first == again
    assert (shuffled.cloud, shuffled.alternates) == (first.cloud, first.alternates)
    assert (first.cloud, first.alternates) == ("p1", ["p2", "x", "y", "z"])
