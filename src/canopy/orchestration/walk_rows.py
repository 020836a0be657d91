"""The rows a walk of a stack (walk.py) changes, and what it records on them.

`WalkRows` holds the stack's resource rows in one step: the present row of each name and
the absent ones (kept between changes), a replaced row an update asks for again (`_kept`),
new rows (`_new_row`, held out of the session for a type that creates many at once), and
the recording of a type's step on a row: its action begun, what the step said (in the
step's savepoint: step_errors.py), its end, with an event each, and the cancelling of
what is still in progress when the stack stops.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from canopy.orchestration import external
from canopy.orchestration.events import resource_event
from canopy.orchestration.resources.adopt import let_go
from canopy.orchestration.resources.base import CreatesMany, Progress, ResourceType, Step
from canopy.orchestration.rows import build
from canopy.orchestration.states import Action, Desired, Status
from canopy.orchestration.step_errors import guarded
from canopy.orchestration.template import ResourceDefinition
from canopy.store.models import StackResource


@dataclass
class Outcome:
    """What a walk found: done, failed (the root cause), or waiting (until when, if on time)."""

    done: bool = False
    failure: str | None = None
    until: datetime | None = None
    started: int = 0  # resources whose action began in this step

    def wait(self, until: datetime | None) -> None:
        if until is not None and (self.until is None or until < self.until):
            self.until = until


@dataclass
class WalkRows:
    """The resource rows of one stack and the step they are changed in: which are present
    or absent, new ones, and what is recorded on them (the walks are walk.py's `Walk`)."""

    step: Step
    rows: list[StackResource]
    now: datetime
    added: list[StackResource] = field(default_factory=list)
    # While the stack adopts (action ADOPT): the adopt data's entry of each resource by
    # name; a new resource is then adopted from its entry instead of created.
    adopting: Mapping[str, Any] | None = None
    # current() and absent(), kept between changes: the forward walk asks for them once per
    # resource, and rebuilding them each time made a step O(resources^2).
    _current: dict[str, StackResource] | None = field(default=None, repr=False)
    _absent: list[StackResource] | None = field(default=None, repr=False)
    # New resources of a type that creates many at once (servers), by type, until the end
    # of the round of the forward walk that started them.
    _queued: dict[str, tuple[CreatesMany, list[StackResource]]] = field(
        default_factory=dict, repr=False
    )

    def current(self) -> dict[str, StackResource]:
        """The present row of each name (do not change it: it is shared until `changed`)."""
        if self._current is None:
            self._current = {r.name: r for r in self.rows if r.desired == Desired.PRESENT}
        return self._current

    def absent(self) -> list[StackResource]:
        if self._absent is None:
            self._absent = [r for r in self.rows if r.desired == Desired.ABSENT]
        return self._absent

    def changed(self) -> None:
        """Rows were added, removed, or their `desired` changed."""
        self._current = None
        self._absent = None

    def _kept(self, d: ResourceDefinition, props: dict[str, Any]) -> StackResource | None:
        """The newest replaced row for `d` that is intact and has exactly `props`."""
        found = [
            r
            for r in self.absent()
            if r.name == d.name
            and r.type == d.type
            and r.status == Status.COMPLETE
            and r.action not in (Action.DELETE, Action.INIT)
            and r.properties == props
            and external.external_id(r) == d.external_id
        ]
        return max(found, key=lambda r: r.created_at) if found else None

    def _new_row(
        self,
        d: ResourceDefinition,
        kind: ResourceType,
        props: dict[str, Any],
        requires: list[str],
        generation: int,
        *,
        hold: bool = False,
    ) -> StackResource:
        """A new row; `hold`: built out of the session, written by `_create_queued`."""
        values: dict[str, Any] = dict(
            id=str(uuid.uuid4()),
            stack_id=self.step.stack.id,
            name=d.name,
            type=d.type,
            desired=Desired.PRESENT,
            generation=generation,
            physical_resource_id="",
            action=Action.INIT,
            status=Status.COMPLETE,
            status_reason="",
            properties=props,
            attributes={},
            requires=requires,
            data={"retain": True} if d.deletion_policy == "Retain" else {},
            server_id=None,
            group_id=None,
            wait_until=None,
            created_at=self.now,
            updated_at=self.now,
        )
        if hold:
            row = build(values)
        else:
            row = StackResource(**values)
            self.step.session.add(row)
        self.rows.append(row)
        if self._current is not None:
            # No other present row has this name (one being replaced was made absent
            # first): the new row is added, not everything rebuilt (a step of N new
            # resources stays O(N)).
            self._current[row.name] = row
        return row

    # Recording --------------------------------------------------------------------------

    async def stepped(
        self, row: StackResource, call: Callable[[], Awaitable[Progress]], *, own: bool = False
    ) -> Progress:
        """A type's step on `row`, recorded, in a savepoint (recorded in it too: one flush
        of the row): a data error fails the row and leaves nothing of the step. `own`: the
        step writes only `row`, after its reads (a server's check): no savepoint, whose
        flush per row would cost more than the step (one batched flush at the commit)."""
        record = partial(self.record, row)
        session = self.step.session
        return await guarded(session, call, row.name, record, self.changed, savepoint=not own)

    async def checked(self, row: StackResource, kind: ResourceType) -> Progress:
        """`kind.check` on `row`, stepped: with no savepoint for a type whose check
        writes only its row (`check_writes_its_row_only`, a server's)."""
        own = bool(getattr(kind, "check_writes_its_row_only", False))
        return await self.stepped(row, lambda: kind.check(self.step, row), own=own)

    def begin(self, row: StackResource, action: Action, reason: str) -> None:
        row.action = action
        row.status = Status.IN_PROGRESS
        row.status_reason = reason
        row.wait_until = None
        row.updated_at = self.now
        resource_event(self.step.session, self.step.stack, row, reason, self.now)

    def record(self, row: StackResource, progress: Progress) -> Progress:
        """Write what a type's step said onto the row, with an event when it finished."""
        if progress.done:
            self._finish(row, Status.COMPLETE, "state changed")
        elif progress.failed is not None:
            self._finish(row, Status.FAILED, progress.failed)
        elif row.wait_until != progress.until:  # an unchanged row is not flushed
            row.wait_until = progress.until
        return progress

    def _finish(self, row: StackResource, status: Status, reason: str) -> None:
        if row.action == Action.ADOPT and status is Status.FAILED:
            let_go(row)
        row.status = status
        row.status_reason = reason
        row.wait_until = None
        row.updated_at = self.now
        resource_event(self.step.session, self.step.stack, row, reason, self.now)

    def cancel(self, reason: str, keep: Callable[[StackResource], bool]) -> None:
        """Mark every row still in progress (and not kept) FAILED: the stack has stopped."""
        for row in self.rows:
            if row.status == Status.IN_PROGRESS and not keep(row):
                self._finish(row, Status.FAILED, reason)
