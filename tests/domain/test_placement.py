"""What a placement record keeps of a decision over many clouds: the choice, the first
alternates and their weights, and how many weighed clouds it leaves out."""

from __future__ import annotations

import json

from canopy.domain.placement import KEPT_ALTERNATES
from canopy.scheduler import schedule
from tests.scheduler.factories import public, request, settings


def test_a_decision_over_500_clouds_is_stored_with_its_first_alternates_only() -> None:
    clouds = [public(f"c{i:03d}", spend_per_hour=i / 1000) for i in range(500)]
    d = schedule(clouds, request(), settings(max_spend_per_hour=1e9))
    assert d.cloud is not None and len(d.alternates) == 499  # the scheduler weighs them all
    stored = d.stored_explanation()
    weights = stored["weights"]
    assert isinstance(weights, dict)
    assert list(weights) == [d.cloud, *d.alternates[:KEPT_ALTERNATES]]
    assert weights[d.cloud] == d.explanation.weights[d.cloud]
    assert stored["weights_left_out"] == 500 - (KEPT_ALTERNATES + 1)
    assert stored["policy"] == d.explanation.policy
    assert len(json.dumps(stored)) < len(json.dumps(d.explanation.to_dict())) / 10


def test_a_decision_over_few_clouds_is_stored_whole() -> None:
    clouds = [public(f"c{i}") for i in range(3)]
    d = schedule(clouds, request(), settings())
    assert d.stored_explanation() == d.explanation.to_dict()
    assert "weights_left_out" not in d.stored_explanation()
