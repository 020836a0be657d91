"""A group's members: rows of the stack's own resources table, driven by their group.

A member is a `stack_resources` row named `<group>.<index>` whose `group_id` is the group's
row id. The graph walk never sees members (the engine reads only rows without a group):
the group's own steps converge them on what it wants, all at once (members do not depend
on each other) or in the batches of its update_policy (rolling.py), with the same actions,
statuses and events as any resource. So a member
server waking the engine (the controller's "a server has answered" query) works as for a
resource of the template, and a group inside a group nests the same way.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select

from canopy.domain.errors import InvalidRequest
from canopy.orchestration.events import resource_event
from canopy.orchestration.nesting import registry_of, resolve_type
from canopy.orchestration.resources.adopt import adopt_leaf, let_go
from canopy.orchestration.resources.base import (
    CreatesMany,
    Progress,
    ResourceType,
    Step,
    creates_many,
)
from canopy.orchestration.resources.properties import typed
from canopy.orchestration.states import Action, Desired, Status
from canopy.orchestration.template import TemplateError
from canopy.store.models import StackResource


@dataclass(frozen=True)
class Wanted:
    """One member the group wants: its index name ("0", "1", ...), type and properties."""

    index: str
    type: str
    properties: Any


def member_name(group: str, index: str) -> str:
    return f"{group}.{index}"


def index_of(group: StackResource, member: StackResource) -> str:
    return member.name[len(group.name) + 1 :]


async def members_of(step: Step, group: StackResource) -> list[StackResource]:
    """Every member row of `group` (present and on their way out), oldest first."""
    q = select(StackResource).where(
        StackResource.stack_id == group.stack_id, StackResource.group_id == group.id
    )
    rows = list((await step.session.execute(q)).scalars())
    return sorted(rows, key=lambda r: (r.created_at, _numeric(index_of(group, r))))


def _numeric(index: str) -> tuple[int, str]:
    return (int(index), "") if index.isdigit() else (1 << 62, index)


@dataclass
class _Tally:
    failure: str | None = None
    pending: bool = False
    until: datetime | None = None

    def add(self, name: str, p: Progress) -> None:
        if p.failed is not None:
            if self.failure is None:
                self.failure = f"resources.{name}: {p.failed}"
        elif not p.done:
            self.pending = True
            if p.until is not None and (self.until is None or p.until < self.until):
                self.until = p.until

    def progress(self) -> Progress:
        if self.failure is not None:
            return Progress.failure(self.failure)
        if self.pending:
            return Progress(until=self.until)
        return Progress.complete()


async def converge(
    step: Step,
    group: StackResource,
    wanted: Sequence[Wanted],
    *,
    fresh: bool,
    hold: Collection[str] = (),
) -> Progress:
    """Take one step towards exactly `wanted`: create what is missing (new servers all
    with one create, as the walk does), update or replace what changed, delete the rest.
    `fresh` (a new create or update of the group) retries members that failed before; a
    later step reports their failure. The existing members of the indexes in `hold` are
    kept as they are (a rolling update's batch leaves them for a later one); their failure,
    old or new, is not reported."""
    # Deferred: the registry lists the group types, which build on this module, and a
    # member may be of any registered type (a true cycle, broken at call time).
    from canopy.orchestration.resources import registry

    now = step.clock.now()
    rows = await members_of(step, group)
    present = {r.name: r for r in rows if r.desired == Desired.PRESENT}
    doomed = [r for r in rows if r.desired == Desired.ABSENT]
    tally = _Tally()
    adopting = member_entries(step, group)
    keep: set[str] = set()
    aliases: dict[str, str] | None = None
    queued: dict[str, tuple[CreatesMany, list[StackResource]]] = {}
    for w in wanted:
        name = member_name(group.name, w.index)
        keep.add(name)
        held = present.get(name) if w.index in hold else None
        if held is not None:
            # Left as it is: its own failure is not the batch's (the batch that takes it
            # replaces it, as Heat's rolling update replaces a failed member).
            if held.status == Status.IN_PROGRESS:
                kind = registry.row_type(held.type)
                p = record(step, held, await kind.check(step, held), now)
                if p.failed is None:
                    tally.add(name, p)
            continue
        try:
            if aliases is None:
                aliases = registry_of(step.stack.environment)
            # An alias of the environment's registry names the type or file it maps to,
            # as a resource of the template does (nesting.mapped_types).
            w = replace(w, type=resolve_type(aliases, w.type))
            kind = registry.resource_type(w.type, f"resources.{name}", step.stack.files)
            props = (
                dict(w.properties or {})
                if kind.open_properties
                else typed(name, kind.properties, w.properties)
            )
        except (InvalidRequest, TemplateError) as e:
            tally.add(name, Progress.failure(str(e)))
            continue
        row = present.get(name)
        if row is not None and _replace(row, w.type, kind, props, fresh):
            row.desired = Desired.ABSENT
            doomed.append(row)
            row = None
        if row is None:
            row = _new(step, group, name, w.type, props, now)
            if adopting is not None:  # the group adopts: each member from its entry
                begin(step, row, Action.ADOPT, now)
                found = await adopt_leaf(step, row, adopting.get(w.index))
                tally.add(name, record(step, row, found, now))
                continue
            begin(step, row, Action.CREATE, now)
            bulk = kind if creates_many(kind) else None
            if bulk is not None:  # servers: created together, below
                queued.setdefault(kind.name, (bulk, []))[1].append(row)
            else:
                tally.add(name, record(step, row, await kind.create(step, row), now))
        elif row.status == Status.COMPLETE and row.properties != props:
            begin(step, row, Action.UPDATE, now)
            tally.add(name, record(step, row, await kind.update(step, row, props), now))
        elif row.status == Status.IN_PROGRESS:
            tally.add(name, record(step, row, await kind.check(step, row), now))
        elif row.status == Status.FAILED:
            tally.add(name, Progress.failure(row.status_reason))
    for bulk, made in queued.values():
        for row, p in zip(made, await bulk.create_many(step, made), strict=True):
            tally.add(row.name, record(step, row, p, now))
    for name, row in present.items():
        if name not in keep:
            row.desired = Desired.ABSENT
            doomed.append(row)
    for row in doomed:
        kind = registry.row_type(row.type)
        if row.action != Action.DELETE or (fresh and row.status == Status.FAILED):
            begin(step, row, Action.DELETE, now)
            p = record(step, row, await kind.delete(step, row), now)
        elif row.status == Status.FAILED:
            p = Progress.failure(row.status_reason)
        else:
            p = record(step, row, await kind.check(step, row), now)
        if p.done:
            await step.session.delete(row)
        tally.add(row.name, p)
    return tally.progress()


def matches(step: Step, row: StackResource, w: Wanted) -> bool:
    """Whether the member `row` is complete and has the definition `w` (as `converge`
    reads it: the environment's aliases resolved, the properties typed)."""
    from canopy.orchestration.resources import registry  # deferred: see converge

    try:
        type_name = resolve_type(registry_of(step.stack.environment), w.type)
        kind = registry.resource_type(type_name, f"resources.{row.name}", step.stack.files)
        props = (
            dict(w.properties or {})
            if kind.open_properties
            else typed(row.name, kind.properties, w.properties)
        )
    except (InvalidRequest, TemplateError):
        return False
    return row.status == Status.COMPLETE and row.type == type_name and row.properties == props


def _replace(
    row: StackResource, type_name: str, kind: ResourceType, props: dict[str, Any], fresh: bool
) -> bool:
    if row.type != type_name:
        return True
    if row.status == Status.FAILED:
        return fresh
    if row.status == Status.IN_PROGRESS or row.properties == props:
        return False
    return not kind.in_place(row.properties, props)


def _new(
    step: Step,
    group: StackResource,
    name: str,
    kind: str,
    props: dict[str, Any],
    now: datetime,
) -> StackResource:
    row = StackResource(
        id=str(uuid.uuid4()),
        stack_id=group.stack_id,
        name=name,
        type=kind,  # a template resource's file, not the shared type's name
        desired=Desired.PRESENT,
        generation=group.generation,
        physical_resource_id="",
        action=Action.INIT,
        status=Status.COMPLETE,
        status_reason="",
        properties=props,
        attributes={},
        requires=[],
        data={},
        server_id=None,
        group_id=group.id,
        wait_until=None,
        created_at=now,
        updated_at=now,
    )
    step.session.add(row)
    return row


def begin(step: Step, row: StackResource, action: Action, now: datetime) -> None:
    row.action = action
    row.status = Status.IN_PROGRESS
    row.status_reason = "state changed"
    row.wait_until = None
    row.updated_at = now
    resource_event(step.session, step.stack, row, "state changed", now)


def member_entries(step: Step, group: StackResource) -> Mapping[str, Any] | None:
    """While `group` adopts: its members' entries in the adopt data by index (the
    group's entry's `resources`, as Heat's abandon nests a group's stack); None otherwise."""
    if group.action != Action.ADOPT:
        return None
    entry = (step.stack.adopt_data or {}).get(group.name)
    found = entry.get("resources") if isinstance(entry, Mapping) else None
    return found if isinstance(found, Mapping) else {}


def record(step: Step, row: StackResource, p: Progress, now: datetime) -> Progress:
    if p.failed is not None and row.action == Action.ADOPT:
        let_go(row)
    if p.done or p.failed is not None:
        row.status = Status.COMPLETE if p.done else Status.FAILED
        row.status_reason = "state changed" if p.done else (p.failed or "")
        row.wait_until = None
        row.updated_at = now
        resource_event(step.session, step.stack, row, row.status_reason, now)
    else:
        row.wait_until = p.until
    return p


def substitute(value: Any, var: str, index: str) -> Any:
    """`value` with every `var` in its strings (keys too) replaced by `index`."""
    if not var:
        return value
    if isinstance(value, str):
        return value.replace(var, index)
    if isinstance(value, list):
        return [substitute(v, var, index) for v in value]
    if isinstance(value, dict):
        return {substitute(k, var, index): substitute(v, var, index) for k, v in value.items()}
    return value
