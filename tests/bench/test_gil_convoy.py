"""bench/gil_convoy.py runs (it is a diagnostic outside the smoke run's default set),
puts the process's switch interval back, and reports each figure against its baseline."""

from __future__ import annotations

import sys

from bench.gil_convoy import INTERVALS, listing_beside_reads, run


def test_each_interval_is_measured_and_the_interval_is_put_back() -> None:
    before = sys.getswitchinterval()
    results = run(reads=3)
    assert sys.getswitchinterval() == before
    assert [r.case.rsplit("interval ", 1)[1] for r in results[::2]] == [
        f"{i * 1000:g} ms" for i in INTERVALS
    ]
    assert all(r.baseline_name == "alone" and r.baseline is not None for r in results)


async def test_the_listing_is_measured_both_ways_on_the_sim() -> None:
    before = sys.getswitchinterval()
    results = await listing_beside_reads(servers=300)
    assert sys.getswitchinterval() == before
    assert [r.case.split(" on the loop")[0] for r in results] == [
        "page read p50",
        "page read p99",
        "timer lag p50",
        "timer lag p99",
    ]
    assert all(r.baseline_name == "pages in a worker thread" for r in results)
