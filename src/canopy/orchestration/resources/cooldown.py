"""An autoscaling group's cooldown and its scaling in progress, as Heat keeps them
(heat/scaling/cooldown.py, `CooldownMixin`), in the group row's `data`.

A signal that scales the group marks it scaling (`start`: Heat's `scaling_in_progress`,
with the cooldown the scaling asks for); while it is, another signal is refused "due to
scaling activity". When the resize ends (`finished`, from the group's step that completes
or fails it), the mark goes; a resize that completed puts the group in cooldown from that
moment (Heat's `_finished_scaling`: the end of the resize plus the cooldown, never earlier
than an end already set); one that failed starts none. A mark left by a resize that never
reached its end (the stack timed out, or was cancelled) is not honoured once the group is
no longer in progress, and the next resize of the group clears it (`clear`). The stack's
own create or update of the group, once complete, puts it in the group's cooldown too, as
in Heat: a policy signalled at once after a stack create is refused.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from canopy.orchestration.states import Action, Status
from canopy.store.models import StackResource

_END = "cooldown_end"
_SCALING = "scaling"  # {"cooldown": seconds}: a scaling's resize is under way


def cooldown_end(group: StackResource) -> datetime | None:
    """When the group's cooldown ends (None: never in one)."""
    raw = (group.data or {}).get(_END)
    return datetime.fromisoformat(raw) if isinstance(raw, str) else None


def set_cooldown(group: StackResource, until: datetime) -> None:
    """The group's cooldown ends at `until`, or at the later end already set."""
    end = cooldown_end(group)
    if end is not None and end > until:
        until = end
    group.data = {**(group.data or {}), _END: until.isoformat()}


def start(group: StackResource, seconds: int) -> None:
    """A scaling of the group begins: its cooldown of `seconds` starts when it ends."""
    group.data = {**(group.data or {}), _SCALING: {"cooldown": max(0, seconds)}}


def scaling(group: StackResource) -> bool:
    """Is a scaling's resize of the group under way?"""
    return _SCALING in (group.data or {}) and group.status == Status.IN_PROGRESS


def clear(data: dict[str, Any]) -> None:
    """Forget a scaling's mark in a group's `data` (a new resize of the group begins)."""
    data.pop(_SCALING, None)


def finished(group: StackResource, now: datetime, *, resized: bool, own: int) -> None:
    """The group's step ended its action at `now`. If a scaling's resize was under way, it
    is over, and when it `resized` the group the scaling's cooldown starts now. Otherwise
    the action was the stack's (create, update): when it completed, the group's `own`
    cooldown starts now (Heat's `check_create_complete`/`check_update_complete`)."""
    data = dict(group.data or {})
    mark = data.pop(_SCALING, None)
    if mark is None:
        seconds = own if resized and group.action in (Action.CREATE, Action.UPDATE) else 0
    else:
        group.data = data
        seconds = int(mark.get("cooldown") or 0) if isinstance(mark, dict) and resized else 0
    if seconds > 0:  # Heat also records an end of "now" for 0: it holds nothing back
        set_cooldown(group, now + timedelta(seconds=seconds))
