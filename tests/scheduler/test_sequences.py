"""Batches of placements with claims between them: spend cap, server groups, retries."""

from __future__ import annotations

import pytest

from canopy.domain.money import to_micros
from canopy.domain.placement import GroupState
from canopy.scheduler import apply_claim, schedule

from .factories import FLAVOR, SMALL, cloud, place_many, private, public, request, settings


def test_the_spend_cap_is_never_exceeded_across_a_sequence() -> None:
    clouds = [
        private(vcpus=4),
        cloud("aws", 1, price_per_hour={FLAVOR: 0.07}),
        cloud("gcp", 1, price_per_hour={FLAVOR: 0.05}),
        cloud("far", 2, price_per_hour={FLAVOR: 0.03}, spend_per_hour=0.1),
    ]
    cap = to_micros("1.0")
    decisions = place_many(clouds, 60, settings(max_spend_per_hour=1.0))

    placed = [d.cloud for d in decisions if d.cloud is not None]
    burst_spend = sum(c.spend_per_hour_micros for c in clouds if c.tier >= 1)
    assert burst_spend <= cap
    # It kept placing until no burst cloud had headroom for one more server.
    assert burst_spend + to_micros("0.03") > cap
    assert placed.count("private") == 4
    refused = decisions[len(placed)]
    assert refused.cloud is None
    assert refused.retryable is True
    assert refused.explanation.steps[-1].name == "spend_cap"
    # Once refused, always refused: nothing frees up within the batch.
    assert all(d.cloud is None for d in decisions[len(placed) :])


def test_tier_zero_is_never_limited_by_the_spend_cap() -> None:
    # Private is priced (power, licences) and already spends far beyond the cap.
    dear_private = cloud(
        "private", 0, vcpus_capacity=100, spend_per_hour=50.0, price_per_hour={FLAVOR: 2.0}
    )
    decisions = place_many([dear_private], 20, settings(max_spend_per_hour=1.0))

    assert all(d.cloud == "private" for d in decisions)
    assert dear_private.spend_per_hour_micros == to_micros(90)


def test_two_anti_affinity_members_land_on_two_clouds_and_a_third_has_nowhere() -> None:
    clouds = [private(), public()]
    cfg = settings()
    members: tuple[str, ...] = ()
    chosen = []
    for i in range(3):
        r = request(f"s{i}", group=GroupState("anti-affinity", members))
        d = schedule(clouds, r, cfg)
        chosen.append(d)
        if d.cloud is not None:
            apply_claim(next(c for c in clouds if c.name == d.cloud), r)
            members += (d.cloud,)

    assert [d.cloud for d in chosen] == ["private", "public", None]
    assert chosen[2].retryable is False
    assert chosen[2].reason == (
        "No valid host: filter server_group removed every cloud "
        "(private: anti-affinity: 1 group member already here; "
        "public: anti-affinity: 1 group member already here)"
    )


def test_affinity_follows_the_first_member_even_past_the_burst_threshold() -> None:
    clouds = [private(vcpus=8, vcpus_claimed=7), public()]
    group = GroupState("affinity", ("private",))

    d = schedule(clouds, request(group=group), settings())

    # Tier 0 would reach 100% > 80%, but the group's only allowed cloud is private.
    assert d.cloud == "private"
    assert "fall back to tier 0 (private)" in d.explanation.policy


def test_affinity_to_a_full_cloud_waits_for_capacity() -> None:
    clouds = [private(vcpus=8, vcpus_claimed=8), public()]
    d = schedule(clouds, request(group=GroupState("affinity", ("private",))), settings())

    assert d.cloud is None
    assert d.retryable is True
    assert d.explanation.steps[-1].name == "capacity"


def test_a_retry_skips_the_clouds_already_tried() -> None:
    clouds = [private(), public("public-a"), public("public-b")]
    first = schedule(clouds, request(), settings())
    second = schedule(clouds, request(excluded=frozenset({first.cloud or ""})), settings())
    third = schedule(
        clouds, request(excluded=frozenset({"private", second.cloud or ""})), settings()
    )
    last = schedule(
        clouds, request(excluded=frozenset({"private", "public-a", "public-b"})), settings()
    )

    assert [first.cloud, second.cloud, third.cloud, last.cloud] == [
        "private",
        "public-a",
        "public-b",
        None,
    ]
    assert second.alternates == ["public-b"]
    assert last.retryable is False
    assert last.explanation.steps[-1].name == "excluded"


def test_apply_claim_adds_resources_and_price() -> None:
    c = cloud("public", 1, vcpus_claimed=1, ram_mb_claimed=10, spend_per_hour=0.5)
    apply_claim(c, request(resources=SMALL))

    assert (c.vcpus_claimed, c.ram_mb_claimed, c.instances_claimed) == (2, 1034, 1)
    assert c.spend_per_hour_micros == to_micros("0.55")


def test_apply_claim_refuses_a_flavor_the_cloud_does_not_offer() -> None:
    with pytest.raises(ValueError, match=r"does not offer flavor 'm1\.small'"):
        apply_claim(cloud("x", price_per_hour={}), request())


def test_schedule_does_not_modify_its_inputs() -> None:
    clouds = [private(vcpus_claimed=3), public(spend_per_hour=0.2)]
    before = [repr(c) for c in clouds]

    schedule(clouds, request(), settings())

    assert [repr(c) for c in clouds] == before
