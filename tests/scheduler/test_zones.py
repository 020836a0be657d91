"""Zones inside a cloud: placement chooses the cloud, then a zone that is neither already
tried for the server nor blocklisted for its flavor; the cloud's other zones come before
the next cloud."""

from __future__ import annotations

from collections import Counter

from canopy.scheduler import schedule

from .factories import FLAVOR, private, public, request, settings, step


def test_a_cloud_without_zones_leaves_the_zone_to_its_driver() -> None:
    d = schedule([private()], request(), settings())

    assert (d.cloud, d.zone) == ("private", None)
    assert "zone" not in d.explanation.to_dict()


def test_the_chosen_zone_is_recorded_in_the_reason_and_the_explanation() -> None:
    d = schedule([private(zones=("a", "b"))], request(), settings())

    assert d.cloud == "private"
    assert d.zone in ("a", "b")
    assert d.reason.endswith(f"; zone {d.zone}")
    assert d.explanation.to_dict()["zone"] == d.zone


def test_zones_are_spread_over_many_servers_and_each_choice_is_stable() -> None:
    c = private(vcpus=10**6, zones=("a", "b", "c"))
    chosen = Counter(schedule([c], request(f"s{i}"), settings()).zone for i in range(600))

    assert set(chosen) == {"a", "b", "c"}
    assert min(chosen.values()) > 150  # about 200 each
    first = schedule([c], request("s42"), settings()).zone
    assert all(schedule([c], request("s42"), settings()).zone == first for _ in range(5))


def test_a_zone_blocklisted_for_the_flavor_is_passed_over_with_its_reason() -> None:
    c = private(zones=("a", "b"), capacity_blocks={FLAVOR: {"a": "no room in a"}})
    for i in range(20):
        d = schedule([c], request(f"s{i}"), settings())
        assert (d.cloud, d.zone) == ("private", "b")
        assert d.explanation.zones_skipped == {"a": f"blocklisted for {FLAVOR}: no room in a"}


def test_a_block_for_another_flavor_changes_nothing() -> None:
    c = private(zones=("a",), capacity_blocks={"m1.xlarge": {"a": "full"}})
    d = schedule([c], request(), settings())

    assert (d.cloud, d.zone) == ("private", "a")


def test_the_next_attempt_tries_the_clouds_other_zone_before_the_next_cloud() -> None:
    clouds = [private(zones=("a", "b")), public(zones=("x",))]
    d = schedule(clouds, request(tried_zones=frozenset({("private", "a")})), settings())

    assert (d.cloud, d.zone) == ("private", "b")
    assert d.explanation.zones_skipped == {"a": "already tried for this server"}


def test_a_cloud_tried_in_every_zone_is_excluded_and_the_next_cloud_is_chosen() -> None:
    clouds = [private(zones=("a", "b")), public(zones=("x", "y"))]
    tried = frozenset({("private", "a"), ("private", "b")})
    d = schedule(clouds, request(tried_zones=tried), settings())

    assert d.cloud == "public"
    assert d.zone in ("x", "y")
    assert step(d, "excluded").removed == {
        "private": "already tried for this server in every zone (a, b)"
    }


def test_a_failure_in_a_zone_of_a_cloud_whose_zones_are_unknown_excludes_the_cloud() -> None:
    clouds = [private(), public()]
    d = schedule(clouds, request(tried_zones=frozenset({("private", "z1")})), settings())

    assert d.cloud == "public"
    assert step(d, "excluded").removed == {"private": "already tried for this server"}


def test_every_zone_blocklisted_removes_the_cloud_and_waiting_may_help() -> None:
    blocks = {FLAVOR: {"a": "full a", "b": "full b"}}
    d = schedule([private(zones=("a", "b"), capacity_blocks=blocks)], request(), settings())

    assert d.cloud is None
    assert d.retryable  # a blocklist runs out: the server waits for capacity
    assert step(d, "blocklist").removed == {
        "private": f"every zone blocklisted for {FLAVOR} after capacity errors "
        "(a: full a; b: full b)"
    }


def test_tried_and_blocklisted_zones_together_leave_nothing() -> None:
    c = private(zones=("a", "b"), capacity_blocks={FLAVOR: {"b": "full b"}})
    d = schedule([c, public()], request(tried_zones=frozenset({("private", "a")})), settings())

    assert d.cloud == "public"
    assert "private" in step(d, "blocklist").removed


def test_a_block_without_a_zone_holds_for_the_whole_cloud_but_only_for_that_flavor() -> None:
    c = private(
        zones=("a", "b"),
        capacity_blocks={FLAVOR: {"": "no valid host"}},
        price_per_hour={FLAVOR: 0.0, "m1.tiny": 0.0},
    )
    d = schedule([c, public()], request(), settings())
    assert d.cloud == "public"
    assert step(d, "blocklist").removed == {
        "private": f"blocklisted for {FLAVOR} after a capacity error: no valid host"
    }
    d = schedule([c, public()], request(flavor="m1.tiny"), settings())
    assert d.cloud == "private"


def test_a_cloud_quota_error_blocklists_the_whole_cloud() -> None:
    d = schedule([private(zones=("a",), blocklisted=True), public()], request(), settings())

    assert d.cloud == "public"
    assert step(d, "blocklist").removed == {"private": "blocklisted after a cloud quota error"}
