"""Canopy's share of a cloud: the total less what others use, clamped, and the whole
total when the cloud does not say what is free."""

from __future__ import annotations

import pytest

from canopy.domain.share import Share, Use, share, shares, total_of
from canopy.domain.specs import Capacity


def test_others_use_what_is_in_use_beyond_canopys_own() -> None:
    # 100 in all, 30 free: 70 in use, 50 of it canopy's; others 20, canopy may fill 80.
    assert share(100, 30, 50) == Share(total=100, others=20, canopy=80)


def test_canopy_may_fill_its_own_use_plus_what_is_free() -> None:
    for total, free, own in ((100, 30, 50), (10, 0, 4), (64, 64, 0), (8, 3, 5)):
        got = share(total, free, own)
        assert got.canopy == free + own
        assert got.others is not None and got.others + got.canopy == total


def test_a_cloud_without_others_gives_canopy_the_whole_total() -> None:
    assert share(10, 6, 4) == Share(10, 0, 10)


@pytest.mark.parametrize(
    ("total", "free", "own", "expected"),
    [
        # Canopy counts more than the cloud does (a server the cloud already let go):
        # others never use less than nothing, canopy never more than the total.
        (10, 8, 5, Share(10, 0, 10)),
        # The cloud reports more free than it has.
        (10, 12, 0, Share(10, 0, 10)),
        # The cloud reports less than nothing free (a quota lowered below its use):
        # others never use more than the total, canopy never less than nothing.
        (10, -4, 0, Share(10, 10, 0)),
        # A quota of nothing.
        (0, 0, 0, Share(0, 0, 0)),
    ],
)
def test_the_clamps_keep_both_parts_within_the_total(
    total: int, free: int, own: int, expected: Share
) -> None:
    got = share(total, free, own)
    assert got == expected
    assert got.canopy is not None and got.others is not None
    assert 0 <= got.canopy <= total and 0 <= got.others <= total


def test_free_unknown_keeps_the_total() -> None:
    assert share(640, None, 12) == Share(total=640, others=None, canopy=640)


def test_an_unbounded_dimension_stays_unbounded() -> None:
    assert share(None, None, 3) == Share(None, None, None)
    assert share(None, 5, 3) == Share(None, None, None)


def test_each_dimension_is_split_on_its_own() -> None:
    nothing = Use(0, 0, 0)
    # The shape of EC2's capacity: limits set, nothing said about what is free.
    ec2 = shares(Capacity(32, None, 20), Use(4, 8192, 2), nothing, None)
    assert (ec2.vcpus.canopy, ec2.ram_mb.canopy, ec2.instances.canopy) == (32, None, 20)
    assert (ec2.vcpus.others, ec2.instances.others) == (None, None)
    nova = Capacity(20, 40960, 10, vcpus_free=6, ram_mb_free=8192, instances_free=4)
    split = shares(nova, Use(8, 16384, 3), nothing, None)
    assert split.vcpus == Share(20, 6, 14)
    assert split.ram_mb == Share(40960, 16384, 24576)
    assert split.instances == Share(10, 3, 7)


def test_with_nothing_unsure_others_are_exact_whatever_was_recorded() -> None:
    assert share(20, 6, 8, unsure=0, previous=0) == Share(20, 6, 14)
    assert share(20, 6, 8, unsure=0, previous=12) == Share(20, 6, 14)


def test_canopys_unsure_use_keeps_the_recorded_others_while_it_fits() -> None:
    # 4 of canopy's servers are booting: the cloud may count them (in use 8: others 4)
    # or not yet (others 8); nothing says which, so the last value, 4, stands.
    assert share(20, 12, 0, unsure=4, previous=4) == Share(20, 4, 16)
    # Canopy's own comings and goings alone never move it: here the cloud counts none
    # of the 4 yet, and others still use 4.
    assert share(20, 16, 0, unsure=4, previous=4) == Share(20, 4, 16)


def test_others_outside_the_range_move_to_its_nearer_end() -> None:
    # Others grew by 6 while canopy's 4 boot: at least 10 - 4 = 6 is theirs now.
    assert share(20, 10, 0, unsure=4, previous=0) == Share(20, 6, 14)
    # An operator's VMs went: in use 5 with 4 of canopy's unsure, others at most 5.
    assert share(20, 15, 0, unsure=4, previous=9) == Share(20, 5, 15)


def test_with_nothing_recorded_the_unsure_counts_as_others() -> None:
    # The first pass (or the first one to learn what is free) takes the most others may
    # use: canopy's share is under-, never over-estimated.
    assert share(20, 12, 0, unsure=4, previous=None) == Share(20, 8, 12)


def test_unsure_beyond_what_is_in_use_clamps_at_nothing() -> None:
    assert share(20, 18, 0, unsure=9, previous=5) == Share(20, 2, 18)
    assert share(20, 18, 0, unsure=9, previous=0) == Share(20, 0, 20)


def test_the_total_comes_back_from_the_recorded_share() -> None:
    assert total_of(14, 6) == 20
    assert total_of(640, None) == 640  # others unknown: canopy's is the total
    assert total_of(None, None) is None
