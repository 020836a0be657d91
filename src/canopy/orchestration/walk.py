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
loses nothing: the next one repeats the step from the rows. The rows themselves, and what is
recorded on them, are walk_rows.py's.
"""

from __future__ import annotations

from dataclasses import dataclass
from graphlib import TopologicalSorter

from sqlalchemy.ext.asyncio import AsyncSessionTransaction

from canopy.orchestration import deletion_policy, external
from canopy.orchestration.abandoning import forget_row
from canopy.orchestration.events import EventsMark, events_mark, write_events
from canopy.orchestration.resolving import RowsContext
from canopy.orchestration.resources import update_policy
from canopy.orchestration.resources.adopt_tree import adopt
from canopy.orchestration.resources.base import Progress, creates_many
from canopy.orchestration.resources.properties import typed
from canopy.orchestration.resources.registry import REPAIRED, resource_type, row_type
from canopy.orchestration.rows import write_rows
from canopy.orchestration.states import Action, Desired, Status
from canopy.orchestration.step_errors import fails, reason, rolled_back
from canopy.orchestration.template import BoundTemplate, ResourceDefinition
from canopy.orchestration.walk_rows import Outcome, WalkRows
from canopy.store.models import StackResource

__all__ = ["Outcome", "Walk"]

_Saved = tuple[AsyncSessionTransaction, EventsMark]  # a savepoint, and the events before it


@dataclass
class Walk(WalkRows):
    """The walks of one stack's rows: forward over the template's graph, backward over
    the rows to delete."""

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
            return await self.checked(row, kind)
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
            return await self.checked(row, kind)
        self.begin(row, Action.DELETE, "state changed")
        out.started += 1
        if external.external_id(row) is not None or deletion_policy.retained(row):
            await forget_row(self.step.session, row, self.now)  # its members, its child
            return self.record(row, Progress.complete())  # not (or no longer) the stack's
        return await self.stepped(row, lambda: kind.delete(self.step, row))
