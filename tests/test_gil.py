"""A serving process hands the GIL to a waiting thread (its event loop) every 0.5 ms."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from canopy.gil import SWITCH_INTERVAL, shorten_switches


@pytest.fixture
def interval() -> Iterator[float]:
    before = sys.getswitchinterval()
    yield before
    sys.setswitchinterval(before)


def test_the_switch_interval_is_shortened_from_pythons_default(interval: float) -> None:
    assert interval > SWITCH_INTERVAL  # CPython's default is 5 ms
    shorten_switches()
    assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL)
