"""The free-slot search read a page at a time (`slot_pages.paged_search`): exact against
the sweep over every claim (`slots.search`, itself checked against brute force), also
with no slot in the range and with thousands of claims; and bounded: past MAX_STEP_ROWS
usage steps it answers up to where it read, never wrongly."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from canopy.domain.errors import InvalidRequest
from canopy.reservations import slot_pages
from canopy.reservations.find_slot import (
    empty_snapshots,
    find_slot,
    parse_query,
    sized,
    spans_in,
)
from canopy.reservations.slot_pages import paged_search
from canopy.reservations.slots import SlotAnswer, search
from canopy.store.models import Claim
from tests.controllers.harness import Plane, make_plane

from .helpers import PRIVATE_ONLY, when
from .test_find_slot import CAPPED, _claims

STEP = timedelta(minutes=5)
BACK_TO_BACK = 2000  # claims, each the whole private cloud for STEP: ~7 days


@pytest.fixture
async def private(db_url: str, tmp_path: Path) -> AsyncIterator[Plane]:
    p = await make_plane(db_url, tmp_path, toml=PRIVATE_ONLY)
    try:
        yield p
    finally:
        await p.close()


def _full(now: datetime, n: int, gap_at: int | None = None) -> list[dict[str, Any]]:
    """`n` claims of the whole private cloud (8 vcpus), back to back from `now`: each ends
    where the next starts, so usage never drops; with `gap_at`, two hours free before the
    claim of that index."""
    rows = []
    start = now
    for i in range(n):
        if i == gap_at:
            start += timedelta(hours=2)
        rows.append(
            {
                "reservation_id": f"r{i}",
                "cloud": "private",
                "vcpus": 8,
                "ram_mb": 8192,
                "disk_gb": 0,
                "instances": 1,
                "price_per_hour_micros": 0,
                "starts_at": start,
                "ends_at": start + STEP,
                "created_at": now,
            }
        )
        start += STEP
    return rows


async def _store(p: Plane, rows: list[dict[str, Any]]) -> None:
    async with p.db.session() as s:
        for i in range(0, len(rows), 500):
            await s.execute(insert(Claim), rows[i : i + 500])


async def _both(
    p: Plane, body: dict[str, Any], max_rows: int = slot_pages.MAX_STEP_ROWS
) -> tuple[SlotAnswer, SlotAnswer]:
    """(the paged search, the sweep over every claim) for `body`, at the plane's now."""
    now = p.clock.now()
    async with p.db.read() as s:
        q = parse_query(body, now)
        size, source = await sized(s, q)
        base = await empty_snapshots(s, size, source, now)
        got = await paged_search(s, base, q, size, p.settings, now, max_rows=max_rows)
        spans = await spans_in(s, max(q.after, now), q.before)
    return got, search(base, spans, q, size, p.settings, now)


def _body(now: datetime, days: int, **kw: Any) -> dict[str, Any]:
    return {
        "vcpus": 1,
        "memory_mb": 512,
        "duration": "1h",
        "after": when(now),
        "before": when(now + timedelta(days=days)),
        **kw,
    }


async def test_no_slot_among_thousands_of_claims_is_a_complete_no(private: Plane) -> None:
    now = private.clock.now()
    await _store(private, _full(now, BACK_TO_BACK))
    got, want = await _both(private, _body(now, 6))
    assert want.slot is None and want.complete
    assert got.slot is None and got.complete
    # Every claim end in the range was a candidate, and every candidate was examined.
    assert got.examined == got.candidates >= want.candidates > 1000
    assert got.searched_until is not None and got.searched_until <= got.latest
    assert got.reason  # why the first start was refused
    # The API's path (the first-start shortcut refuses, then the pages) says the same.
    async with private.db.read() as s:
        _, _, api = await find_slot(s, private.settings, now, _body(now, 6))
    assert api.slot is None and api.complete and api.examined == got.examined


async def test_the_one_gap_after_thousands_of_claims_is_found_exactly(private: Plane) -> None:
    now = private.clock.now()
    await _store(private, _full(now, BACK_TO_BACK, gap_at=1500))
    got, want = await _both(private, _body(now, 7))
    assert want.slot is not None and got.slot is not None
    gap = now + 1500 * STEP
    assert got.slot.start == want.slot.start == gap
    assert got.slot.shares == want.slot.shares and got.complete
    # Two hours fit the gap exactly; a minute more fits nowhere in the range.
    got, want = await _both(private, _body(now, 7, duration="121m"))
    assert got.slot is None and want.slot is None and got.complete


async def test_past_the_bound_it_answers_up_to_where_it_read(
    private: Plane, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = private.clock.now()
    await _store(private, _full(now, BACK_TO_BACK, gap_at=1500))
    read: list[tuple[int, int]] = []  # (limit asked, rows returned) per page
    real = slot_pages.usage_steps

    async def counted(*args: Any) -> Any:
        rows = await real(*args)
        read.append((args[-1], len(rows)))
        return rows

    monkeypatch.setattr(slot_pages, "usage_steps", counted)
    got, want = await _both(private, _body(now, 7), max_rows=300)
    assert want.slot is not None and want.slot.start == now + 1500 * STEP
    # Not complete, no slot claimed, and nothing skipped: the gap is past what it read.
    assert got.slot is None and not got.complete
    assert got.searched_until is not None and got.searched_until < want.slot.start
    assert 0 < got.examined <= got.candidates
    # What it read: at most the bound, plus one look-ahead row per page.
    assert sum(n for _, n in read) <= 300 + len(read)
    assert all(limit <= 301 for limit, _ in read)
    # Asked again from where it stopped, it goes on (and ends at the same answer).
    until = got.searched_until
    for _ in range(50):
        got, _ = await _both(private, _body(now, 7) | {"after": when(until)}, max_rows=300)
        if got.slot is not None:
            break
        assert got.searched_until is not None and got.searched_until > until
        until = got.searched_until
    assert got.slot is not None and got.slot.start == want.slot.start


async def test_a_window_with_more_steps_than_the_bound_is_400(private: Plane) -> None:
    now = private.clock.now()
    await _store(private, _full(now, 200))
    with pytest.raises(InvalidRequest, match="search a shorter duration"):
        await _both(private, _body(now, 3, duration="12h"), max_rows=50)


async def test_bounded_answers_are_never_wrong_on_random_stores(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CAPPED)
    try:
        now = p.clock.now()
        rng = random.Random(11)
        await _store(p, _claims(now, rng, 400))
        complete = partial = refused = 0
        for _ in range(30):
            after = now + timedelta(seconds=rng.randrange(0, 86400))
            body = {
                "vcpus": rng.choice([1, 2]),
                "memory_mb": 1024,
                "count": rng.choice([4, 8, 12, 40]),
                "duration": f"{rng.randint(10, 600)}m",
                "after": when(after),
                "before": when(after + timedelta(days=3)),
                "affinity": rng.choice([None, True]),
            }
            bound = rng.choice([60, 200, 100_000])
            try:
                got, want = await _both(p, body, max_rows=bound)
            except InvalidRequest:
                assert bound < 100_000, body  # one window holds more steps than a tiny bound
                refused += 1
                continue
            if got.complete:
                complete += 1
                assert (got.slot is None) == (want.slot is None), body
                if got.slot is not None and want.slot is not None:
                    assert got.slot.start == want.slot.start, body
                    assert got.slot.shares == want.slot.shares, body
            else:
                partial += 1
                assert got.slot is None and got.searched_until is not None, body
                # Nothing it passed over was a slot.
                assert want.slot is None or want.slot.start > got.searched_until, body
        assert complete and partial, (complete, partial, refused)  # both kinds were checked
    finally:
        await p.close()


async def test_asked_again_from_where_it_stopped_it_goes_on_when_usage_only_rises(
    private: Plane,
) -> None:
    """Past the bound, `searched_until` is the last candidate examined, not the last start
    decided: a page whose usage only rises (claims start, none ends) has one candidate,
    its first minute, whatever its width. Cut by the bound, the answer is incomplete with
    `searched_until` = the `after` asked, so asking again from there answers the same, for
    ever: the slot after the claims end is never reached by following the answers."""
    now = private.clock.now()
    rows = []
    for i in range(600):  # the whole private cloud from now, a claim starting every STEP
        start = now + i * STEP
        rows.append(
            {
                "reservation_id": f"r{i}",
                "cloud": "private",
                "vcpus": 8,
                "ram_mb": 8192,
                "disk_gb": 0,
                "instances": 1,
                "price_per_hour_micros": 0,
                "starts_at": start,
                "ends_at": now + timedelta(days=3),
                "created_at": now,
            }
        )
    await _store(private, rows)
    got, want = await _both(private, _body(now, 7), max_rows=300)
    assert want.slot is not None and want.slot.start == now + timedelta(days=3)
    assert got.slot is None and not got.complete and got.searched_until is not None
    until = got.searched_until
    for _ in range(20):
        got, _ = await _both(private, _body(now, 7) | {"after": when(until)}, max_rows=300)
        if got.slot is not None:
            break
        assert got.searched_until is not None and got.searched_until > until, (
            f"no progress: asked after {until}, searched until {got.searched_until}"
        )
        until = got.searched_until
    assert got.slot is not None and got.slot.start == want.slot.start


async def test_a_bound_that_decides_nothing_past_the_start_asked_is_400(
    private: Plane,
) -> None:
    """Rows for one window and a minute more than the bound: only the start asked is
    decided (refused by a claim over its first minute), so no answer could go on from
    there. It is the 400 of a window with too many steps, not an answer to follow."""
    now = private.clock.now()
    rows = []
    for i, (start, minutes, vcpus) in enumerate(
        [(0, 1, 8), (10, 600, 1), (20, 600, 1), (30, 600, 1), (60.5, 600, 1)]
    ):
        at = now + timedelta(minutes=start)
        rows.append(
            {
                "reservation_id": f"r{i}",
                "cloud": "private",
                "vcpus": vcpus,
                "ram_mb": 512,
                "disk_gb": 0,
                "instances": 1,
                "price_per_hour_micros": 0,
                "starts_at": at,
                "ends_at": at + timedelta(minutes=minutes),
                "created_at": now,
            }
        )
    await _store(private, rows)
    with pytest.raises(InvalidRequest, match="search a shorter duration"):
        await _both(private, _body(now, 1), max_rows=5)
    # A minute later the rows fit the bound, and the start there is the slot.
    later = _body(now, 1) | {"after": when(now + timedelta(minutes=1))}
    got, want = await _both(private, later, max_rows=5)
    assert want.slot is not None and want.slot.start == now + timedelta(minutes=1)
    assert got.slot is not None and got.slot.start == want.slot.start


async def test_clouds_that_hold_nothing_take_none_of_the_bound(db_url: str, tmp_path: Path) -> None:
    """Six empty clouds and a bound of five rows: usage at the window's start is zero
    everywhere, which is no row (a row per cloud there would fill the bound before the
    search read anything, and refuse the search as having too many steps)."""
    toml = "".join(
        f'[[clouds]]\nname = "c{i}"\ntier = 0\n[clouds.sim]\nhosts = 1\nhost_vcpus = 8\n'
        for i in range(6)
    )
    p = await make_plane(db_url, tmp_path, toml=toml)
    try:
        now = p.clock.now()
        got, want = await _both(p, _body(now, 1), max_rows=5)
        assert want.slot is not None and want.slot.start == now.replace(second=0, microsecond=0)
        assert got.slot is not None and got.slot.start == want.slot.start
        assert got.complete
    finally:
        await p.close()
