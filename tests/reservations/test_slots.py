"""The free-slot search against a brute force over every minute of random timelines.

The brute force tries every whole minute of the range in order, computes each cloud's
peak over the window minute by minute from the claims (all on whole minutes, so minutes
are exact), and runs the lease create's placement (`capacity.place`) on it: the first
minute it accepts is the answer. The search must find the same minute, or none when there
is none, with its sweep over claim ends.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from canopy.config import Settings, load_settings
from canopy.domain.errors import Conflict
from canopy.domain.money import to_micros
from canopy.domain.placement import CloudSnapshot
from canopy.reservations.capacity import Size, place
from canopy.reservations.slots import (
    SLOT_FLAVOR,
    SlotQuery,
    candidate_starts,
    search,
    shortfall,
    sweep,
    with_usage,
)
from canopy.reservations.timeline import (
    AMOUNT,
    CLOUD,
    END,
    MINUTE_US,
    START,
    SlidingPeak,
    Span,
    Steps,
    instant,
    micros,
    span,
)

ORIGIN = datetime(2026, 6, 1, tzinfo=UTC)
HORIZON = 60  # minutes
PRICE = to_micros("0.048")  # one server on public, per hour
SIZE = Size(SLOT_FLAVOR, 1, 1024, 0)


def at(minute: int) -> datetime:
    return ORIGIN + timedelta(minutes=minute)


def us(minute: int) -> int:
    return micros(at(minute))


def live_at(sp: Span, t: int) -> bool:
    end = sp[END]
    return sp[START] <= t and (end is None or t < end)


def base() -> dict[str, CloudSnapshot]:
    """private: 8 vcpus, 16 GB, free; public: 16 vcpus, priced (the cap holds 5)."""
    return {
        "private": CloudSnapshot(
            name="private",
            tier=0,
            vcpus_capacity=8,
            ram_mb_capacity=16384,
            price_per_hour_micros={SLOT_FLAVOR: 0},
        ),
        "public": CloudSnapshot(
            name="public",
            tier=1,
            vcpus_capacity=16,
            ram_mb_capacity=65536,
            price_per_hour_micros={SLOT_FLAVOR: PRICE},
        ),
    }


def cfg(threshold: float) -> Settings:
    return load_settings(
        None,
        env={},
        overrides={"scheduler": {"burst_threshold": threshold, "max_spend_per_hour": 0.25}},
    )


claim = st.builds(
    lambda cloud, start, length, v, r: span(
        cloud,
        us(start),
        None if length is None else us(start + length),
        (v, r, 1, PRICE * v if cloud == "public" else 0),
    ),
    st.sampled_from(["private", "public"]),
    st.integers(-10, HORIZON),
    st.none() | st.integers(1, 30),
    st.integers(0, 6),
    st.sampled_from([0, 1024, 4096, 8192]),
)


def brute_force(
    spans: list[Span], q: SlotQuery, s: Settings, now: datetime
) -> tuple[datetime, list[tuple[str, int]]] | None:
    minute = max(0, -(-int((now - ORIGIN).total_seconds()) // 60))
    minute = max(minute, int((q.after - ORIGIN).total_seconds() // 60))
    last = int((q.before - q.duration - ORIGIN).total_seconds() // 60)
    length = int(q.duration.total_seconds() // 60)
    for m in range(minute, last + 1):
        snaps = {}
        for name, c in base().items():
            peak = [0, 0, 0, 0]
            for t in range(m, m + length):
                live = [sp for sp in spans if sp[CLOUD] == name and live_at(sp, us(t))]
                for d in range(4):
                    peak[d] = max(peak[d], sum(sp[AMOUNT][d] for sp in live))
            snaps[name] = with_usage(c, (peak[0], peak[1], peak[2], peak[3]))
        try:
            shares = place(snaps, SIZE, q.amount, q.affinity, s, "brute")
        except Conflict:
            continue
        return at(m), [(sh.cloud, sh.amount) for sh in shares]
    return None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    spans=st.lists(claim, max_size=14),
    after=st.integers(0, HORIZON - 1),
    span=st.integers(1, HORIZON),
    length=st.integers(1, 20),
    amount=st.integers(1, 14),
    affinity=st.sampled_from([None, False, True]),
    threshold=st.sampled_from([0.8, 1.0]),
    late=st.sampled_from([0, 30, 60 * 7]),
)
def test_the_search_finds_the_minute_a_brute_force_finds(
    spans: list[Span],
    after: int,
    span: int,
    length: int,
    amount: int,
    affinity: bool | None,
    threshold: float,
    late: int,
) -> None:
    span = max(span, length)
    q = SlotQuery(
        amount=amount,
        duration=timedelta(minutes=length),
        after=at(after),
        before=at(after + span),
        affinity=affinity,
    )
    s = cfg(threshold)
    now = ORIGIN + timedelta(seconds=late)  # "now" inside or after a minute
    want = brute_force(spans, q, s, now)
    got = search(base(), spans, q, SIZE, s, now)
    assert got.complete
    if want is None:
        assert got.slot is None
        return
    assert got.slot is not None, (want, got)
    assert got.slot.start == want[0]
    assert got.slot.end == want[0] + q.duration
    assert [(sh.cloud, sh.amount) for sh in got.slot.shares] == want[1]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    spans=st.lists(claim, max_size=14),
    after=st.integers(0, HORIZON - 1),
    span=st.integers(1, HORIZON),
    length=st.integers(1, 20),
    amount=st.integers(1, 14),
    affinity=st.sampled_from([None, True]),
    page=st.integers(0, HORIZON),
    most=st.integers(1, 4),
)
def test_every_start_up_to_refused_through_is_refused_by_the_brute_force(
    spans: list[Span],
    after: int,
    span: int,
    length: int,
    amount: int,
    affinity: bool | None,
    page: int,
    most: int,
) -> None:
    """The sweep of a page of the range (its starts up to `page` minutes in, at most
    `most` of them examined) says up to where every start is refused; the paged search
    answers that when it stops, so it must hold past the page and the candidates too
    (the starts a refusal's peaks still cover), and be no earlier than what was decided."""
    span = max(span, length)
    q = SlotQuery(
        amount=amount,
        duration=timedelta(minutes=length),
        after=at(after),
        before=at(after + span),
        affinity=affinity,
    )
    s = cfg(1.0)
    earliest, latest = us(after), us(after + span - length)
    hi = min(latest, us(after + page))
    peaks = {
        name: SlidingPeak(Steps([x for x in spans if x[CLOUD] == name], earliest))
        for name in base()
    }
    starts = candidate_starts(spans, earliest, hi)
    got = sweep(base(), peaks, starts, earliest, hi, q, SIZE, s, 10_000, "", most, latest)
    want = brute_force(spans, q, s, ORIGIN)
    if got.slot is not None:
        assert want is not None and got.slot.start == want[0]
        return
    if got.complete:  # every start of the page was decided
        assert got.refused_through is not None and got.refused_through >= instant(hi)
    else:  # the first `most` were
        assert got.refused_through is not None
        assert got.refused_through >= instant(starts[most] - MINUTE_US)
    assert got.refused_through <= instant(latest)
    assert want is None or want[0] > got.refused_through, (want, got)


@settings(max_examples=200, deadline=None)
@given(
    spans=st.lists(claim, max_size=20),
    windows=st.lists(st.tuples(st.integers(0, HORIZON), st.integers(1, 20)), max_size=12),
)
def test_sliding_peaks_match_the_minutes_under_them(
    spans: list[Span], windows: list[tuple[int, int]]
) -> None:
    mine = [sp for sp in spans if sp[CLOUD] == "private"]
    peaks = SlidingPeak(Steps(mine, us(0)))
    starts = sorted(windows)
    ends_so_far = 0
    for s, n in starts:
        e = max(s + n, ends_so_far)  # both ends never move back
        ends_so_far = e
        want = [0, 0, 0, 0]
        for t in range(s, e):
            live = [x for x in mine if live_at(x, us(t))]
            for d in range(4):
                want[d] = max(want[d], sum(x[AMOUNT][d] for x in live))
        got = peaks.peak(us(s), us(e))
        assert got == tuple(want)
        # `held`: by then every nonzero peak was reached, and it holds up to that instant
        # (a later window starting by then still contains it).
        if not any(got):
            assert peaks.held is None
            continue
        assert peaks.held is not None and us(s) <= peaks.held < us(e)
        for d in range(4):
            if got[d]:
                reached = [
                    t
                    for t in range(s, e)
                    if sum(x[AMOUNT][d] for x in mine if live_at(x, us(t))) == got[d]
                ]
                assert us(reached[-1] + 1) - 1 >= peaks.held


def test_windows_asked_out_of_order_are_refused() -> None:
    peaks = SlidingPeak(Steps([], us(0)))
    peaks.peak(us(5), us(10))
    with pytest.raises(ValueError):
        peaks.peak(us(4), us(10))


def test_candidates_are_the_first_minute_and_the_minute_after_each_end() -> None:
    spans = [
        span("private", us(0), us(3) + 20_000_000, (1, 0, 1, 0)),  # 20 s past a minute
        span("public", us(1), us(7), (1, 0, 1, 0)),
        span("private", us(2), None, (1, 0, 1, 0)),
        span("public", us(2), us(30), (1, 0, 1, 0)),  # ends after the last start
    ]
    assert candidate_starts(spans, us(1), us(20)) == [us(1), us(4), us(7)]


def test_shortfall_counts_the_cheapest_burst_servers_under_the_cap() -> None:
    snaps = base()
    # private has room for 8, public for 16 but the cap for 5 (0.25 / 0.048).
    assert shortfall(snaps, SIZE, 13, None, to_micros("0.25")) is None
    why = shortfall(snaps, SIZE, 14, None, to_micros("0.25"))
    assert why == "room for 13 of 14 over the window (capacity and spend cap)"
    assert shortfall(snaps, SIZE, 9, True, to_micros("0.25")) is not None
    assert shortfall(snaps, SIZE, 8, True, to_micros("0.25")) is None


def test_a_slot_that_fits_exactly_is_found_after_the_claim_in_its_way_ends() -> None:
    # private is full until minute 10; then private (8) and the cap's 5 on public hold 13.
    spans = [span("private", us(-5), us(10), (8, 0, 1, 0))]
    q = SlotQuery(amount=13, duration=timedelta(minutes=30), after=at(0), before=at(120))
    got = search(base(), spans, q, SIZE, cfg(1.0), ORIGIN)
    assert got.slot is not None
    assert got.slot.start == at(10)
    assert [(sh.cloud, sh.amount) for sh in got.slot.shares] == [("private", 8), ("public", 5)]
    assert got.slot.cost_per_hour_micros == 5 * PRICE
    assert got.reason.startswith("Not enough resources available (5 of 13 would fit)")
    assert (got.candidates, got.examined) == (2, 2)
    q14 = SlotQuery(amount=14, duration=timedelta(minutes=30), after=at(0), before=at(120))
    none = search(base(), spans, q14, SIZE, cfg(1.0), ORIGIN)
    assert none.slot is None and none.complete and none.searched_until == at(10)


def test_an_affine_reservation_goes_to_the_next_cloud_when_the_first_cannot_hold_it() -> None:
    s = load_settings(None, env={}, overrides={"scheduler": {"max_spend_per_hour": 1.0}})
    # private (the policy's first choice) holds 8; public holds all 10 within the cap.
    shares = place(base(), SIZE, 10, True, s, "r")
    assert [(sh.cloud, sh.amount) for sh in shares] == [("public", 10)]
    with pytest.raises(Conflict, match=r"\(8 of 17 would fit\)"):
        place(base(), SIZE, 17, True, s, "r")  # neither holds 17: the first refusal is told
