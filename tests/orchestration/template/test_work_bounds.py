"""Bounded work for what a template asks: str_replace, list uniqueness, deep JSON values."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import pytest

from canopy.domain.errors import InvalidRequest
from canopy.orchestration.service import parse_request
from canopy.orchestration.template import TemplateError, limits, parse_template
from canopy.orchestration.template.functions_base import Evaluator
from canopy.orchestration.template.hot_functions_more import Filter, ListConcatUnique

from .helpers import IDENTITY, evaluate, hot


def replace(template: str, params: Mapping[str, Any]) -> Any:
    return evaluate({"str_replace": {"template": template, "params": dict(params)}})


def refused_value(value: Any) -> TemplateError:
    with pytest.raises(TemplateError) as e:
        evaluate(value)
    return e.value


def heat_replace(text: str, keys: list[str], values: Mapping[str, str]) -> str:
    """Heat's own recursive algorithm, as the reference for small inputs."""
    if not keys:
        return text
    first, rest = keys[0], keys[1:]
    if first == "":
        return heat_replace(text, rest, values)
    return values[first].join(heat_replace(p, rest, values) for p in text.split(first))


def test_str_replace_matches_heat_on_random_inputs() -> None:
    rng = random.Random(7)
    for _ in range(300):
        text = "".join(rng.choice("abc$") for _ in range(rng.randint(0, 30)))
        params = {
            "".join(rng.choice("abc$") for _ in range(rng.randint(0, 3))): "".join(
                rng.choice("abcXY") for _ in range(rng.randint(0, 3))
            )
            for _ in range(rng.randint(0, 6))
        }
        keys = sorted(sorted(params), key=len, reverse=True)
        assert replace(text, params) == heat_replace(text, keys, params), (text, params)


def test_str_replace_refuses_too_many_keys() -> None:
    params = {f"k{i:05d}": "" for i in range(limits.MAX_REPLACE_KEYS + 1)}
    e = refused_value({"str_replace": {"template": "x", "params": params}})
    assert e.message == f"'params' has more than {limits.MAX_REPLACE_KEYS} keys"
    assert replace("k00001", {f"k{i:05d}": "v" for i in range(limits.MAX_REPLACE_KEYS)}) == "v"


def test_str_replace_drops_emptied_text_instead_of_searching_it_again() -> None:
    params = {chr(c): "" for c in range(33, 127)}  # 94 one-character keys
    assert replace("!" * 200_000, params) == ""


class CountingCharges(Evaluator):
    def __init__(self) -> None:
        super().__init__(
            parameters={},
            identity=IDENTITY,
            conditions=None,  # type: ignore[arg-type]
            files={},
            mappings={},
            ctx=None,
        )
        self.charges = 0

    def charge(self, units: int, path: str) -> None:
        self.charges += 1
        super().charge(units, path)


def test_str_replace_past_the_budget_is_refused_before_the_work() -> None:
    from canopy.orchestration.template.hot_functions import StrReplace

    # 100,000 pieces left after the first key, each to be searched for 93 more keys.
    node = StrReplace(
        {"template": "!a" * 100_000, "params": {chr(c): "" for c in range(33, 127)}}, "p"
    )
    ev = CountingCharges()
    with pytest.raises(TemplateError) as e:
        node.result(ev)
    assert "produces more than" in e.value.message
    # Refused after a few whole-key charges, not after splitting piece by piece.
    assert ev.charges < 200


def test_str_replace_refuses_a_huge_output_before_building_it() -> None:
    e = refused_value({"str_replace": {"template": "!" * 100_000, "params": {"!": "x" * 100}}})
    assert "produces more than" in e.message


class EqCounter:
    """A value that counts equality tests (a quadratic dedupe does n²/2 of them)."""

    calls = 0

    def __init__(self, n: int) -> None:
        self.n = n

    def __eq__(self, other: object) -> bool:
        EqCounter.calls += 1
        return isinstance(other, EqCounter) and other.n == self.n

    def __hash__(self) -> int:
        return hash(self.n)


def test_list_concat_unique_and_filter_do_linear_work() -> None:
    items = [EqCounter(i) for i in range(3000)]
    EqCounter.calls = 0
    out = ListConcatUnique([items, items[:10]], "p").result(CountingCharges())
    assert out == items
    assert EqCounter.calls < 3 * 3000
    EqCounter.calls = 0
    kept = Filter([items[:1500], items], "p").result(CountingCharges())
    assert kept == items[1500:]
    assert EqCounter.calls < 3 * 3000


def test_list_concat_unique_and_filter_keep_heat_equality() -> None:
    lists = [[1, "1", {"a": [1, 2]}, None], [1.0, {"a": [1, 2]}, [3], [3], None]]
    assert evaluate({"list_concat_unique": lists}) == [1, "1", {"a": [1, 2]}, None, [3]]
    many = [str(i) for i in range(30_000)]
    assert evaluate({"list_concat_unique": [many, many]}) == many
    assert evaluate({"filter": [[{"a": 1}, 2], [{"a": 1}, 1, 2, {"a": 2}]]}) == [1, {"a": 2}]


def test_a_deep_json_template_string_is_a_bad_request() -> None:
    with pytest.raises(InvalidRequest):
        parse_request({"stack_name": "s", "template": "[" * 100_000}, template_required=True)


@pytest.mark.parametrize("value", ["[" * 100_000, "[" * 60 + "]" * 60])
def test_a_deep_json_parameter_value_is_refused(value: str) -> None:
    raw = hot(parameters={"j": {"type": "json"}})
    with pytest.raises(TemplateError) as e:
        parse_template(raw).bind({"j": value}, IDENTITY)
    assert "nested more than" in e.value.message
