"""One step of a stack: walk its graph as far as it goes now, in one transaction.

Forward (create and update): a `graphlib.TopologicalSorter` over the current template's
resources. Every ready resource is started at once (as much parallelism as the graph
allows); one that completes within the step (a Value, a RandomString, a server already
ACTIVE) is marked done at once and releases its dependents in the same step. A resource
still going stays pending and blocks its dependents; a failed one blocks them for good and
fails the stack with its reason (the root cause: dependents are never started).

Backward (delete, and the clean-up after an update): the rows to delete, each after every
row that requires it is gone.

Every change is a row written in the step's transaction, so a worker that dies mid-step
loses nothing: the next one repeats the step from the rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from graphlib import TopologicalSorter
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSessionTransaction

from canopy.orchestration import deletion_policy, external
from canopy.orchestration.abandoning import forget_row
from canopy.orchestration.events import EventsMark, events_mark, resource_event, write_events
from canopy.orchestration.resolving import RowsContext
from canopy.orchestration.resources import update_policy
from canopy.orchestration.resources.adopt import let_go
from canopy.orchestration.resources.adopt_tree import adopt
from canopy.orchestration.resources.base import (
    CreatesMany,
    Progress,
    ResourceType,
    Step,
    creates_many,
)
from canopy.orchestration.resources.properties import typed
from canopy.orchestration.resources.registry import REPAIRED, resource_type, row_type
from canopy.orchestration.rows import build, write_rows
from canopy.orchestration.states import Action, Desired, Status
from canopy.orchestration.step_errors import fails, guarded, reason, rolled_back
from canopy.orchestration.template import BoundTemplate, ResourceDefinition
from canopy.store.models import StackResource

_Saved = tuple[AsyncSessionTransaction, EventsMark]  # a savepoint, and the events before it


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
class Walk:
    """The resource rows of one stack and the step they are changed in."""

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

    # Forward ----------------------------------------------------------------------------

    async def forward(self, bound: BoundTemplate, generation: int) -> Outcome:
        out = Outcome()
        defs = bound.resources()
        for row in self.rows:
            if row.desired != Desired.PRESENT:
                continue
            if row.name in defs:
                deletion_policy.mark(row, defs[row.name].deletion_policy)
            else:
                row.desired = Desired.ABSENT  # removed from the template: goes in the clean-up
        self.changed()
        graph = {name: set(d.depends_on) & set(defs) for name, d in defs.items()}
        sorter = TopologicalSorter(graph)
        sorter.prepare()
        while sorter.is_active():
            ready = sorter.get_ready()
            if not ready:
                break  # what is left waits on a resource still going, or on a failure
            names = sorted(ready)
            found = {
                name: await self._advance(bound, defs[name], generation, out) for name in names
            }
            found.update(await self._create_queued())
            for name in names:
                progress = found[name]
                if progress.done:
                    sorter.done(name)
                elif progress.failed is not None:
                    if out.failure is None:
                        out.failure = f"resources.{name}: {progress.failed}"
                else:
                    out.wait(progress.until)
        out.done = not sorter.is_active()
        return out

    async def _advance(
        self, bound: BoundTemplate, d: ResourceDefinition, generation: int, out: Outcome
    ) -> Progress:
        row = self.current().get(d.name)
        if row is not None and row.generation == generation:
            if row.status == Status.COMPLETE:
                return Progress.complete()
            if row.status == Status.FAILED:
                return Progress.failure(row.status_reason)
            kind = row_type(row.type)
            return await self.stepped(row, lambda: kind.check(self.step, row))
        if (
            row is not None
            and row.type == d.type
            and row.status == Status.COMPLETE
            and external.external_id(row) != d.external_id
        ):
            return Progress.failure(external.update_refused(d.name, d.type))
        if d.external_id is not None:
            return await self._external(bound, d, row, generation, out)
        try:
            kind = resource_type(d.type, f"resources.{d.name}", bound.template.files)
            ctx = RowsContext(self.current())
            raw = bound.resolve(d.properties, ctx)
            props = dict(raw or {}) if kind.open_properties else typed(d.name, kind.properties, raw)
            policy = update_policy.resolved(d, lambda v: bound.resolve(v, ctx))
        except Exception as e:  # a TemplateError, or one no check foresaw (step_errors.py)
            if not fails(e):
                raise
            if row is not None and row.generation != generation:
                row.desired = Desired.ABSENT  # the old one goes; the new one never came
                self.changed()
            return Progress.failure(reason(e, d.name))
        requires = sorted(d.depends_on)
        # A group that failed is repaired by an update in place (its failed members are
        # replaced), as Heat updates a failed nested stack, rather than replaced whole.
        repair = row is not None and row.status == Status.FAILED and row.type in REPAIRED
        intact = (
            row is not None and row.type == d.type and (row.status == Status.COMPLETE or repair)
        )
        if intact and row is not None and props == row.properties and not repair:
            row.generation = generation
            row.requires = requires
            update_policy.keep_policy(row, policy)
            return Progress.complete()
        kept = None if repair else self._kept(d, props)
        if kept is not None:
            # A rollback (or an update after a failed one) asks again for what an earlier
            # update replaced: the old resource is still there, so it comes back as it is.
            if row is not None:
                row.desired = Desired.ABSENT
            kept.desired = Desired.PRESENT
            self.changed()
            kept.generation = generation
            kept.requires = requires
            return Progress.complete()
        if intact and row is not None and kind.in_place(row.properties, props):
            row.generation = generation
            row.requires = requires
            self.begin(row, Action.UPDATE, "state changed")
            out.started += 1
            update_policy.keep_policy(row, policy)
            return await self.stepped(row, lambda: kind.update(self.step, row, props))
        if row is not None:
            row.desired = Desired.ABSENT  # replaced: deleted in the clean-up
            self.changed()
        bulk = kind if self.adopting is None and creates_many(kind) else None
        new = self._new_row(d, kind, props, requires, generation, hold=bulk is not None)
        update_policy.keep_policy(new, policy)
        out.started += 1
        if self.adopting is not None:
            self.begin(new, Action.ADOPT, "state changed")
            entry = self.adopting.get(d.name)
            return await self.stepped(new, lambda: adopt(self.step, new, entry))
        self.begin(new, Action.CREATE, "state changed")
        if bulk is not None:
            self._queued.setdefault(kind.name, (bulk, []))[1].append(new)
            return Progress()  # started with the others of its type, after this round
        return await self.stepped(new, lambda: kind.create(self.step, new))

    async def _external(
        self, bound: BoundTemplate, d: ResourceDefinition, row: StackResource | None,
        generation: int, out: Outcome,
    ) -> Progress:  # fmt: skip
        """An existing resource the template names by external_id: taken, never made."""
        assert d.external_id is not None
        if row is not None and row.status == Status.COMPLETE and row.type == d.type:
            row.generation = generation  # the same external id (a change was refused)
            row.requires = []
            return Progress.complete()
        kind = resource_type(d.type, f"resources.{d.name}", bound.template.files)
        kept = self._kept(d, {})
        if row is not None:
            row.desired = Desired.ABSENT  # failed, or of another type: replaced
            self.changed()
        if kept is not None:
            kept.desired = Desired.PRESENT
            self.changed()
            kept.generation = generation
            return Progress.complete()
        new = self._new_row(d, kind, {}, [], generation)
        self.begin(new, Action.CREATE, "state changed")
        out.started += 1
        taken = d.external_id
        return await self.stepped(new, lambda: external.adopt(self.step, kind, new, taken))

    async def _create_queued(self) -> dict[str, Progress]:
        """Create the resources queued in this round, each type's together."""
        out: dict[str, Progress] = {}
        queued, self._queued = self._queued, {}
        s = self.step.session
        for kind, rows in queued.values():
            written: list[bool] = []
            saved: list[_Saved] = []

            async def write(rows: list[StackResource] = rows, done: list[bool] = written) -> None:
                # Their IN_PROGRESS events and the rows themselves (held out of the
                # session: rows.py), before the servers.
                await write_events(s)
                await write_rows(s, rows)
                done.append(True)

            async def before(saved: list[_Saved] = saved) -> None:
                await write()  # what the type writes next goes in a savepoint (step_errors)
                saved.append((await s.begin_nested(), events_mark(s)))

            try:
                made = await kind.create_many(self.step, rows, before)
            except Exception as e:  # each of them fails (step_errors.py)
                if not fails(e):
                    raise
                if saved:  # nothing the type wrote stays: no server of theirs either
                    await saved[0][0].rollback()
                    await rolled_back(s, saved[0][1])
                    for row in rows:
                        row.server_id, row.physical_resource_id = None, ""
                else:
                    await write()
                made = [Progress.failure(reason(e, rows[0].name))] * len(rows)
            else:
                if saved:
                    await saved[0][0].commit()
            if written != [True]:
                raise RuntimeError(f"{type(kind).__name__}.create_many must call `before` once")
            for row, progress in zip(rows, made, strict=True):
                out[row.name] = self.record(row, progress)
        return out

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

    # Backward ---------------------------------------------------------------------------

    async def backward(self) -> Outcome:
        """Delete the absent rows, each once every absent row requiring it is gone."""
        out = Outcome()
        doomed = self.absent()
        graph = {
            r.id: {x.id for x in doomed if x.id != r.id and r.name in (x.requires or [])}
            for r in doomed
        }
        sorter = TopologicalSorter(graph)
        sorter.prepare()
        by_id = {r.id: r for r in doomed}
        while sorter.is_active():
            ready = sorter.get_ready()
            if not ready:
                break
            for rid in sorted(ready):
                row = by_id[rid]
                progress = await self._delete(row, out)
                if progress.done:
                    await self.step.session.delete(row)
                    self.rows.remove(row)
                    self.changed()
                    sorter.done(rid)
                elif progress.failed is not None:
                    if out.failure is None:
                        out.failure = f"resources.{row.name}: {progress.failed}"
                else:
                    out.wait(progress.until)
        out.done = not sorter.is_active()
        return out

    async def _delete(self, row: StackResource, out: Outcome) -> Progress:
        kind = row_type(row.type)
        if row.action == Action.DELETE:
            if row.status == Status.FAILED:
                return Progress.failure(row.status_reason)
            return await self.stepped(row, lambda: kind.check(self.step, row))
        self.begin(row, Action.DELETE, "state changed")
        out.started += 1
        if external.external_id(row) is not None or deletion_policy.retained(row):
            await forget_row(self.step.session, row, self.now)  # its members, its child
            return self.record(row, Progress.complete())  # not (or no longer) the stack's
        return await self.stepped(row, lambda: kind.delete(self.step, row))

    # Recording --------------------------------------------------------------------------

    async def stepped(
        self, row: StackResource, call: Callable[[], Awaitable[Progress]]
    ) -> Progress:
        """A type's step on `row`, recorded, in a savepoint (recorded in it too: one flush
        of the row): a data error fails the row and leaves nothing of the step."""
        record = partial(self.record, row)
        return await guarded(self.step.session, call, row.name, record, self.changed)

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
