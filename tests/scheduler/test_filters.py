"""Each pre-filter and filter removes what it should, says why, and is counted."""

from __future__ import annotations

import pytest

from canopy.domain.placement import CloudSnapshot, GroupState
from canopy.domain.specs import Resources
from canopy.scheduler import schedule
from canopy.scheduler.filters import STEPS

from .factories import FLAVOR, cloud, place_many, private, public, request, settings, step

ALL_STEPS = [f.name for f in STEPS]


def test_every_step_is_recorded_in_order_even_when_it_removes_nothing() -> None:
    d = schedule([private(), public()], request(), settings())

    assert d.cloud == "private"
    assert [s.name for s in d.explanation.steps] == [
        "availability_zone",
        "excluded",
        "inventory",
        "flavor",
        "image",
        "server_group",
        "enabled",
        "health",
        "blocklist",
        "capacity",
        "spend_cap",
    ]
    assert all(s.before == 2 and s.removed == {} for s in d.explanation.steps)


@pytest.mark.parametrize(
    ("odd", "name", "reason"),
    [
        (cloud("odd", enabled=False), "enabled", "disabled"),
        (cloud("odd", healthy=False), "health", "unhealthy"),
        (
            cloud("odd", inventoried=False),
            "inventory",
            "no inventory yet: its capacity and flavors have not been read from the cloud",
        ),
        (cloud("odd", blocklisted=True), "blocklist", "blocklisted after a cloud quota error"),
        (cloud("odd", price_per_hour={"m1.large": 1.0}), "flavor", "flavor 'm1.small' not offered"),
        (cloud("odd", images=frozenset({"other"})), "image", "image 'img' not mapped"),
    ],
)
def test_prefilter_removes_only_the_cloud_that_fails_it(
    odd: CloudSnapshot, name: str, reason: str
) -> None:
    d = schedule([odd, cloud("good")], request(image_id="img"), settings())

    assert d.cloud == "good"
    assert d.alternates == []
    s = step(d, name)
    assert (s.before, s.removed) == (2, {"odd": reason})
    # Everything after the removal sees one cloud fewer.
    later = d.explanation.steps[ALL_STEPS.index(name) + 1 :]
    assert all(x.before == 1 for x in later)


def test_image_filter_passes_clouds_without_an_image_list_and_requests_without_an_image() -> None:
    mapped = cloud("mapped", images=frozenset({"img"}))
    anything = cloud("anything", images=None)
    unmapped = cloud("unmapped", images=frozenset())

    with_image = schedule([mapped, anything, unmapped], request(image_id="img"), settings())
    no_image = schedule([mapped, anything, unmapped], request(image_id=None), settings())

    assert step(with_image, "image").removed == {"unmapped": "image 'img' not mapped"}
    assert step(no_image, "image").removed == {}


def test_availability_zone_keeps_only_the_named_cloud() -> None:
    d = schedule([private(), public()], request(availability_zone="public"), settings())

    assert d.cloud == "public"
    assert step(d, "availability_zone").removed == {
        "private": "not the requested availability zone 'public'"
    }


def test_excluded_clouds_are_skipped() -> None:
    d = schedule(
        [private(), public(), public("public-b")],
        request(excluded=frozenset({"private", "public"})),
        settings(),
    )

    assert d.cloud == "public-b"
    assert step(d, "excluded").removed == {
        "private": "already tried for this server",
        "public": "already tried for this server",
    }


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        ({"vcpus_capacity": 8, "vcpus_claimed": 7}, "needs 2 vcpus, 1 free of 8"),
        ({"ram_mb_capacity": 4096, "ram_mb_claimed": 3072}, "needs 2048 MB ram, 1024 free of 4096"),
        ({"instances_capacity": 3, "instances_claimed": 3}, "needs 1 instance, 0 free of 3"),
        (
            {"vcpus_capacity": 1, "ram_mb_capacity": 1024},
            "needs 2 vcpus, 1 free of 1; needs 2048 MB ram, 1024 free of 1024",
        ),
    ],
)
def test_capacity_counts_claims_and_names_what_is_short(kw: dict[str, int], reason: str) -> None:
    full = cloud("full", **kw)
    d = schedule(
        [full, cloud("roomy")], request(resources=Resources(vcpus=2, ram_mb=2048)), settings()
    )

    assert d.cloud == "roomy"
    assert step(d, "capacity").removed == {"full": reason}


def test_capacity_fits_exactly_and_none_means_unbounded() -> None:
    exact = cloud("exact", vcpus_capacity=8, vcpus_claimed=7, instances_capacity=1)
    unbounded = cloud("unbounded", vcpus_claimed=10**6)

    d = schedule([exact, unbounded], request(), settings())

    assert step(d, "capacity").removed == {}


def test_spend_cap_counts_every_burst_cloud_and_ignores_tier_zero() -> None:
    # Tier 0 spend (and even a disabled burst cloud's spend) is in the picture; only tier
    # >= 1 spend counts towards the cap, disabled or not, because it is all billed.
    expensive_private = cloud("private", 0, spend_per_hour=500.0, price_per_hour={FLAVOR: 9.0})
    idle = public("idle", enabled=False, spend_per_hour=0.9)
    burst = public("burst", spend_per_hour=0.0)  # would cost PUBLIC_PRICE = 0.05 more

    d = schedule([expensive_private, idle, burst], request(), settings(max_spend_per_hour=0.94))

    assert d.cloud == "private"
    assert step(d, "spend_cap").removed == {
        "burst": "burst spend would reach $0.95/h > cap $0.94/h ($0.90/h now + $0.05/h here)"
    }


def test_spend_cap_allows_landing_exactly_on_the_cap() -> None:
    clouds = [public("a", spend_per_hour=0.1), public("b", spend_per_hour=0.2)]
    d = schedule(clouds, request(), settings(max_spend_per_hour=0.35))

    assert step(d, "spend_cap").removed == {}


def test_spend_cap_is_exact_to_the_micro_unit() -> None:
    """Three servers at 0.1/h fill a 0.3/h cap exactly (in floats 0.1 + 0.1 + 0.1 is
    0.30000000000000004 > 0.3); one micro-unit more is refused."""
    fill = [public("a", price_per_hour={FLAVOR: 0.1})]
    decisions = place_many(fill, 4, settings(max_spend_per_hour=0.3))
    assert [d.cloud for d in decisions] == ["a", "a", "a", None]
    assert fill[0].spend_per_hour_micros == 300_000
    assert step(decisions[3], "spend_cap").removed == {
        "a": "burst spend would reach $0.40/h > cap $0.30/h ($0.30/h now + $0.10/h here)"
    }

    over = public("b", spend_per_hour=0.2, price_per_hour={FLAVOR: 0.100001})
    d = schedule([over], request(), settings(max_spend_per_hour=0.3))
    assert step(d, "spend_cap").removed == {
        "b": "burst spend would reach $0.300001/h > cap $0.30/h ($0.20/h now + $0.100001/h here)"
    }


def test_affinity_keeps_only_the_members_clouds() -> None:
    group = GroupState("affinity", ("public",))
    d = schedule([private(), public(), public("other")], request(group=group), settings())

    assert d.cloud == "public"
    assert step(d, "server_group").removed == {
        "private": "affinity: the group's members are on public",
        "other": "affinity: the group's members are on public",
    }


def test_affinity_without_members_yet_filters_nothing() -> None:
    d = schedule([private(), public()], request(group=GroupState("affinity")), settings())

    assert d.cloud == "private"
    assert step(d, "server_group").removed == {}


def test_anti_affinity_removes_the_members_clouds() -> None:
    group = GroupState("anti-affinity", ("private", "private"))
    d = schedule([private(), public()], request(group=group), settings())

    assert d.cloud == "public"
    assert step(d, "server_group").removed == {
        "private": "anti-affinity: 2 group members already here"
    }


@pytest.mark.parametrize("policy", ["soft-affinity", "soft-anti-affinity"])
def test_soft_policies_never_filter(policy: str) -> None:
    group = GroupState(policy, ("private",))
    d = schedule([private(), public()], request(group=group), settings())

    assert step(d, "server_group").removed == {}
    assert d.cloud is not None
