"""The graphs of the stacks benchmark (bench/stacks.py): the three shapes, their templates,
and what is computed on them (depth, the longest path of measured boots, Heat's model)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

Graph = Mapping[str, list[str]]  # resource -> the resources it needs


def wide(n: int) -> Graph:
    return {f"s{i}": [] for i in range(n)}


def deep(n: int, levels: int = 10) -> Graph:
    per = max(1, n // levels)
    return {
        f"l{lv}_{i}": ([f"l{lv - 1}_{i}"] if lv else []) for lv in range(levels) for i in range(per)
    }


def diamond(n: int) -> Graph:
    fan = max(1, (n - 2) // 2)
    g: dict[str, list[str]] = {"root": []}
    g.update({f"a{i}": ["root"] for i in range(fan)})
    g.update({f"b{i}": [f"a{i}", f"a{(i + 1) % fan}"] for i in range(fan)})
    g["sink"] = [f"b{i}" for i in range(fan)]
    return g


SHAPES = {"wide": wide, "deep": deep, "diamond": diamond}


def template(graph: Graph) -> dict[str, Any]:
    res = {
        name: {
            "type": "OS::Nova::Server",
            "properties": {"flavor": "m1.tiny", "image": "cirros"},
            **({"depends_on": needs} if needs else {}),
        }
        for name, needs in graph.items()
    }
    return {"heat_template_version": "2018-08-31", "resources": res}


def depth(graph: Graph) -> int:
    memo: dict[str, int] = {}

    def d(name: str) -> int:
        if name not in memo:
            memo[name] = 1 + max((d(x) for x in graph[name]), default=0)
        return memo[name]

    return max(d(n) for n in graph)


def longest(graph: Graph, cost: Mapping[str, float]) -> float:
    """The largest sum of `cost` along any path of the graph."""
    memo: dict[str, float] = {}

    def end(name: str) -> float:
        if name not in memo:
            memo[name] = cost[name] + max((end(x) for x in graph[name]), default=0.0)
        return memo[name]

    return max(end(n) for n in graph)


def heat_model(graph: Graph, boot: Mapping[str, float]) -> float:
    """Heat's convergence on the same boots: leaves cast 1 s apart, completion polled each 1 s."""
    leaves = sorted(n for n in graph if not graph[n])
    start = {n: float(k) for k, n in enumerate(leaves)}
    memo: dict[str, float] = {}

    def end(name: str) -> float:
        if name not in memo:
            begin = start.get(name, max((end(x) for x in graph[name]), default=0.0))
            memo[name] = begin + max(1.0, math.ceil(boot[name]))
        return memo[name]

    return max(end(n) for n in graph)
