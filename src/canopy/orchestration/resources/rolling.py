"""Changing a group's members in batches: Heat's rolling update and batch create.

The plan is Heat's arithmetic (heat/scaling/rolling_update.py): each batch is the group's
size after it and how many members get the new definition in it (new members first, then
existing ones whose definition differs). With `min_in_service`, a batch may grow the group
past its target for a while; the last one brings it back.

Everything is in the group row's `data["batches"]`, written in the step's transaction:
the batches left, the members of the batch under way (and which of them take the new
definition; the others are held as they are), and when the pause after it ends. A worker
killed mid-batch loses nothing: the next step converges on the same batch. A pause is a
time-based wait like a WaitCondition's: the group reports `Progress(until=...)`, the stack's
`next_attempt_at` wakes the engine then, and the next batch starts.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from canopy.orchestration.resources.base import Progress, Step
from canopy.orchestration.resources.members import (
    Wanted,
    converge,
    index_of,
    matches,
    members_of,
)
from canopy.orchestration.resources.update_policy import Batching
from canopy.orchestration.states import Desired
from canopy.store.models import StackResource

KEY = "batches"
TIMEOUT_MESSAGE = "The current update policy will result in stack update timeout."

Define = Callable[[str], Wanted]  # a member's definition (the new one) by index
# Existing member indexes in the order they are replaced or removed (the first first),
# given the size of the batch.
Order = Callable[[list[str], int], list[str]]
Fresh = Callable[[int, set[str]], list[str]]  # that many new indexes, none of `taken`


def next_batch(target: int, current: int, updated: int, size: int, keep: int) -> tuple[int, int]:
    """The group's size after the next batch and how many members take the new
    definition in it (Heat's `next_batch`)."""
    least = min(keep, target, current)
    batch = min(size, max(target - updated, 0))
    return batch + max(min(current, target - batch), least), batch


def plan(
    target: int, current: int, b: Batching, *, extra_counts: bool, updated: int = 0
) -> list[tuple[int, int]]:
    """Every batch from `current` members (`updated` of them up to date) to `target`.
    `extra_counts`: members made past the target count as updated (Heat's instance groups)
    or not (its ResourceGroup)."""
    out: list[tuple[int, int]] = []
    while not (updated >= current == target) and len(out) <= 2 * (target + current) + 2:
        cap, new = next_batch(target, current, updated, b.size, b.keep)
        out.append((cap, new))
        updated += new if extra_counts else new - max(cap - max(current, target), 0)
        current = cap
    return out


def too_long(batches: Sequence[Any], pause: float, step: Step) -> bool:
    """Whether the pauses alone outlast the stack action's limit (Heat refuses the update):
    the stack's timeout_mins, else [orchestration] stack_action_timeout_minutes, the limit
    the engine times the action out at (Heat's `stack.timeout_secs()`)."""
    limit = (
        step.stack.timeout_mins or step.servers.settings.orchestration.stack_action_timeout_minutes
    )
    return pause * max(len(batches) - 1, 0) >= limit * 60


def start(
    res: StackResource,
    batches: list[tuple[int, int]],
    pause: float,
    *,
    track: bool = False,
    target: int = 0,
    leaving: Collection[str] = (),
) -> None:
    """Record a plan on the group; its first batch starts at the next `run`. `track`: each
    batch's members are also the group's `data["members"]` (autoscaling groups), whose
    size stays `target` (see `target_of`): members a batch adds for min_in_service are
    temporary, even when the batch fails and they are left until the next update.
    `leaving`: members on their way out, never given the new definition (a failed one is
    not replaced only to be removed)."""
    state: dict[str, Any] = {
        "plan": [list(b) for b in batches],
        "at": -1,
        "pause": pause,
        "track": track,
        "leaving": sorted(leaving),
    }
    if track:
        state["target"] = target
    res.data = {**(res.data or {}), KEY: {**state, "names": [], "new": [], "resume_at": None}}


def running(res: StackResource) -> bool:
    return isinstance((res.data or {}).get(KEY), dict)


def target_of(res: StackResource) -> int | None:
    """The size a tracked plan (under way, or left by a failed batch) brings the group to."""
    state = (res.data or {}).get(KEY)
    if isinstance(state, dict) and state.get("track") and "target" in state:
        return int(state["target"])
    return None


async def behind(
    step: Step, res: StackResource, define: Define, wanted: Collection[str], leave: Collection[str]
) -> tuple[int, int, bool]:
    """The members present (but those in `leave`), how many of `wanted` among them are up
    to date (complete, of their definition), and whether any of `wanted` is not: an
    update, or the repair of a failed one, rolls whenever this is so, not only when the
    definition changed."""
    rows = {
        index_of(res, m): m
        for m in await members_of(step, res)
        if m.desired == Desired.PRESENT and index_of(res, m) not in leave
    }
    there = [i for i in wanted if i in rows]
    fine = [i for i in there if matches(step, rows[i], define(i))]
    return len(rows), len(fine), len(fine) < len(there)


def stop(res: StackResource) -> None:
    data = dict(res.data or {})
    data.pop(KEY, None)
    res.data = data


async def run(
    step: Step, res: StackResource, define: Define, order: Order, fresh: Fresh, *, first: bool
) -> Progress:
    """Carry the plan on: converge on the batch under way; once it is done, pause or
    start the next. Complete when the last batch is (the plan is then cleared)."""
    now = step.clock.now()
    for _ in range(len(res.data[KEY]["plan"]) + 1):
        state = dict(res.data[KEY])
        if state["resume_at"] is not None:
            until = datetime.fromisoformat(state["resume_at"])
            if now < until:
                return Progress(until=until)
        if state["at"] < 0 or state["resume_at"] is not None:
            if state["at"] + 1 >= len(state["plan"]):
                stop(res)
                return Progress.complete()
            await _begin_batch(step, res, state, define, order, fresh)
            first = True
            state = res.data[KEY]
        hold = set(state["names"]) - set(state["new"])
        wanted = [define(i) for i in state["names"]]
        p = await converge(step, res, wanted, fresh=first, hold=hold)
        if not p.done:
            return p
        if state["at"] + 1 >= len(state["plan"]):
            stop(res)
            return Progress.complete()
        resume = now + timedelta(seconds=float(state["pause"]))
        res.data = {**res.data, KEY: {**state, "resume_at": resume.isoformat()}}
    return Progress(until=now)  # not reached: each round starts a batch or returns


async def _begin_batch(
    step: Step,
    res: StackResource,
    state: dict[str, Any],
    define: Define,
    order: Order,
    fresh: Fresh,
) -> None:
    at = state["at"] + 1
    cap, new = state["plan"][at]
    rows = {
        index_of(res, m): m for m in await members_of(step, res) if m.desired == Desired.PRESENT
    }
    leaving = set(state.get("leaving") or ())
    old = [
        (i, i in leaving or matches(step, rows[i], define(i)))
        for i in order(list(rows), cap)
        if i in rows
    ]
    names, taking = batch_members(old, cap, new, lambda n: fresh(n, set(rows)))
    data = {**res.data, KEY: {**state, "at": at, "names": names, "new": taking, "resume_at": None}}
    if state.get("track"):
        data["members"] = list(names)
    res.data = data


def batch_members(
    old: list[tuple[str, bool]], cap: int, new: int, fresh: Callable[[int], list[str]]
) -> tuple[list[str], list[str]]:
    """A batch's members and those taking the new definition (Heat's member_definitions):
    `old` are the existing members with whether each is up to date, the first to replace or
    remove first; the last `cap` of them stay, and new members make up the rest."""
    kept = old[-cap:] if cap else []
    create = cap - len(kept)
    replace = new - create
    names: list[str] = []
    taking: list[str] = []
    for name, current in kept:
        names.append(name)
        if not current and replace > 0:
            replace -= 1
            taking.append(name)
    made = fresh(create)
    return names + made, taking + made


def counting(start_at: Iterator[int]) -> Fresh:
    """New indexes from a counter, skipping those taken."""

    def fresh(n: int, taken: set[str]) -> list[str]:
        out: list[str] = []
        while len(out) < n:
            i = str(next(start_at))
            if i not in taken:
                out.append(i)
        return out

    return fresh
