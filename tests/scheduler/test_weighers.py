"""Weighers give raw numbers; the pipeline normalises them to 0..1 and applies signs."""

from __future__ import annotations

import itertools

import pytest

from canopy.domain.placement import CloudSnapshot, GroupState
from canopy.domain.specs import Resources
from canopy.scheduler import schedule
from canopy.scheduler.context import Context
from canopy.scheduler.weighers import utilisation

from .factories import FLAVOR, cloud, private, request, settings


def priced(name: str, price: float) -> CloudSnapshot:
    return cloud(name, 1, price_per_hour={FLAVOR: price})


def test_cost_is_normalised_over_the_candidates_and_cheaper_wins() -> None:
    clouds = [priced("mid", 0.2), priced("dear", 0.3), priced("cheap", 0.1)]
    d = schedule(clouds, request(), settings(cost_weight=-1.0))

    assert d.cloud == "cheap"
    assert d.alternates == ["mid", "dear"]
    cost = {name: w["cost"] for name, w in d.explanation.weights.items()}
    assert cost == pytest.approx({"cheap": 0.0, "mid": -0.5, "dear": -1.0})
    assert "chose cheap (cheapest in tier 1, weight 0.00)" in d.explanation.policy


def test_a_positive_cost_weight_prefers_the_dearest() -> None:
    clouds = [priced("cheap", 0.1), priced("dear", 0.3)]
    d = schedule(clouds, request(), settings(cost_weight=2.0))

    assert d.cloud == "dear"
    assert d.explanation.weights["dear"]["cost"] == pytest.approx(2.0)


def test_equal_raw_values_normalise_to_zero() -> None:
    clouds = [priced("a", 0.1), priced("b", 0.1)]
    d = schedule(clouds, request(), settings())

    for w in d.explanation.weights.values():
        assert w == {"cost": 0.0, "utilisation": 0.0, "tier": 0.0, "total": 0.0}
    assert d.cloud == "a"  # a tie goes to the first name
    assert "tied with b on weight, first by name" in d.explanation.policy


def test_total_is_the_sum_of_the_signed_values() -> None:
    clouds = [
        private("p", vcpus_claimed=2),
        cloud("q", 0, vcpus_capacity=8, price_per_hour={FLAVOR: 1.0}),
    ]
    d = schedule(clouds, request(), settings(cost_weight=-1.0, utilisation_weight=-0.5))

    for w in d.explanation.weights.values():
        assert w["total"] == pytest.approx(w["cost"] + w["utilisation"] + w["tier"])


@pytest.mark.parametrize(("weight", "winner"), [(-1.0, "empty"), (1.0, "busy")])
def test_utilisation_weight_sign_spreads_or_packs(weight: float, winner: str) -> None:
    busy = private("busy", vcpus_claimed=5)
    empty = private("empty", vcpus_claimed=1)
    cfg = settings(burst_threshold=1.0, utilisation_weight=weight)

    d = schedule([busy, empty], request(), cfg)

    assert d.cloud == winner
    assert d.explanation.weights[winner]["utilisation"] == pytest.approx(max(weight, 0.0))
    verb = "less" if weight < 0 else "more"
    other = "busy" if winner == "empty" else "empty"
    assert f"({verb} utilised than {other} after placement" in d.explanation.policy


def test_tier_weigher_is_recorded_with_its_sign() -> None:
    d = schedule([private(), cloud("public", 2)], request(), settings(tier_weight=-2.0))

    assert d.explanation.weights["private"]["tier"] == 0.0
    assert d.explanation.weights["public"]["tier"] == pytest.approx(-2.0)


@pytest.mark.parametrize(
    ("policy", "winner", "key", "value"),
    [
        ("soft-affinity", "b", "soft_affinity", 1.0),
        ("soft-anti-affinity", "b", "soft_anti_affinity", 0.0),
    ],
)
def test_soft_group_policies_are_a_weigher(
    policy: str, winner: str, key: str, value: float
) -> None:
    # Members on b for soft-affinity (pull towards b), on a for soft-anti (push away from a).
    members = ("b", "b") if policy == "soft-affinity" else ("a",)
    clouds = [private("a"), private("b")]
    d = schedule(clouds, request(group=GroupState(policy, members)), settings())

    assert d.cloud == winner
    assert d.explanation.weights[winner][key] == pytest.approx(value)
    loser = d.explanation.weights["a"][key]
    assert loser == pytest.approx(0.0 if policy == "soft-affinity" else -1.0)


def test_a_single_candidate_weighs_zero() -> None:
    d = schedule([priced("only", 3.0)], request(), settings())

    assert d.explanation.weights == {
        "only": {"cost": 0.0, "utilisation": 0.0, "tier": 0.0, "total": 0.0}
    }


def test_utilisation_weigher_matches_the_snapshot_method() -> None:
    need = Resources(vcpus=2, ram_mb=3000, instances=1)
    req = request(resources=need)
    caps = [None, 0, 10, 10_000]
    for v, r, n in itertools.product(caps, repeat=3):
        c = CloudSnapshot(
            name="c",
            tier=0,
            vcpus_capacity=v,
            ram_mb_capacity=r,
            instances_capacity=n,
            vcpus_claimed=3,
            ram_mb_claimed=4000,
            instances_claimed=2,
        )
        ctx = Context.build([c], req, settings())
        assert utilisation([c], ctx) == [c.utilisation(need)], (v, r, n)
