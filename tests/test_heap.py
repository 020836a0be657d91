"""The start-up heap is frozen out of the collector's scans, after a collection."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from canopy.heap import freeze_startup_heap


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_objects_alive_at_start_up_are_frozen_and_garbage_is_not(unfrozen: None) -> None:
    kept = [Node() for _ in range(100)]
    garbage = Node()
    gone = weakref.ref(garbage)
    del garbage
    frozen = freeze_startup_heap()
    assert frozen == gc.get_freeze_count() > len(kept)
    # What was alive is in the permanent generation, which no collection scans.
    scanned = {id(o) for o in gc.get_objects()}
    assert not any(id(n) in scanned for n in kept)
    # The cycle that was already garbage was collected first, not frozen for ever.
    assert gone() is None
    # Objects made afterwards are scanned as usual.
    late = Node()
    assert id(late) in {id(o) for o in gc.get_objects()}


@pytest.fixture
def thresholds() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    yield before
    gc.set_threshold(*before)


def test_the_young_generation_is_collected_less_often(thresholds: tuple[int, int, int]) -> None:
    from canopy.heap import YOUNG_THRESHOLD, pace_collector

    pace_collector()
    young, middle, old = gc.get_threshold()
    assert young == YOUNG_THRESHOLD >= 10_000
    assert (middle, old) == thresholds[1:]
    # A listing-sized burst of short-lived objects no longer sets off a collection.
    gc.collect()
    before = gc.get_stats()[0]["collections"]
    listing = [{"addr": [str(i)]} for i in range(5_000)]
    del listing
    assert gc.get_stats()[0]["collections"] == before
