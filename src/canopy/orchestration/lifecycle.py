"""Suspend, resume and check: acting on a stack's resources as they stand.

Suspend walks the graph backwards (a resource is suspended once everything that needs it
is), resume forwards, as Heat does. A server resource is stopped or started through the
server service (the power controller makes the cloud call) and completes when its server
row says SHUTOFF or ACTIVE; every other resource has nothing to suspend and completes at
once. A group (ResourceGroup, either AutoScalingGroup) is suspended, resumed and checked
with its members, and completes when they all have; a nested stack resource by its child
stack taking the same action (nested_actions.py), at any depth. Check confirms each resource's
observed state from canopy's own rows (the sync controller keeps them): a server must exist
and be ACTIVE or SHUTOFF, anything else must have completed its last action. Nothing here
changes the template or the generation.
"""

from __future__ import annotations

from graphlib import TopologicalSorter

from sqlalchemy import select

from canopy.domain.errors import CanopyError
from canopy.domain.states import ServerStatus
from canopy.orchestration.nested_actions import child_progress, nested, start_child
from canopy.orchestration.resources.base import Progress
from canopy.orchestration.states import Action, Desired, Status
from canopy.orchestration.walk import Outcome, Walk
from canopy.store.models import Server, StackResource

_WANT = {Action.SUSPEND: ServerStatus.SHUTOFF, Action.RESUME: ServerStatus.ACTIVE}


async def power_walk(walk: Walk, action: Action) -> Outcome:
    """Suspend (backwards) or resume (forwards) every resource of the current template."""
    out = Outcome()
    rows = walk.current()
    if action is Action.RESUME:
        graph = {n: set(r.requires or []) & set(rows) for n, r in rows.items()}
    else:
        graph = {n: {x.name for x in rows.values() if n in (x.requires or [])} for n in rows}
    sorter = TopologicalSorter(graph)
    sorter.prepare()
    while sorter.is_active():
        ready = sorter.get_ready()
        if not ready:
            break
        for name in sorted(ready):
            progress = await _power(walk, rows[name], action, out)
            if progress.done:
                sorter.done(name)
            elif progress.failed is not None and out.failure is None:
                out.failure = f"resources.{name}: {progress.failed}"
    out.done = not sorter.is_active()
    return out


async def _power(walk: Walk, row: StackResource, action: Action, out: Outcome) -> Progress:
    """One step of suspending or resuming `row`, and its members if it is a group (a group
    is done when every member is: Heat suspends a group's nested stack the same way)."""
    if row.action == action:
        if row.status == Status.COMPLETE:
            return Progress.complete()
        if row.status == Status.FAILED:
            return Progress.failure(row.status_reason)
    else:
        walk.begin(row, action, "state changed")
        out.started += 1
        failed = await _switch(walk, row, action)
        if failed is None and nested(row):
            failed = await start_child(walk, row, action)
            failed = failed if failed.failed is not None else None
        if failed is not None:
            return walk.record(row, failed)
    if nested(row):
        progress = await child_progress(walk, row, action)
    else:
        progress = await _observe(walk, row, _WANT[action])
    if progress.done or progress.failed is None:
        members = await _members(walk, row)
        tally = [await _power(walk, m, action, out) for m in members]
        failure = next((p.failed for p in tally if p.failed is not None), None)
        if failure is not None:
            progress = Progress.failure(failure)
        elif not all(p.done for p in tally):
            progress = Progress()
    return walk.record(row, progress)


async def _members(walk: Walk, row: StackResource) -> list[StackResource]:
    """The present members of `row` if it is a group (none otherwise), by name. (Not
    members.members_of: importing it here would close an import cycle through the
    registry.)"""
    q = (
        select(StackResource)
        .where(
            StackResource.stack_id == row.stack_id,
            StackResource.group_id == row.id,
            StackResource.desired == Desired.PRESENT,
        )
        .order_by(StackResource.name)
    )
    return list((await walk.step.session.execute(q)).scalars())


async def _switch(walk: Walk, row: StackResource, action: Action) -> Progress | None:
    """Ask the server service to stop or start `row`'s server; a failure if it refuses."""
    if row.server_id is None:
        return None
    server = await walk.step.session.get(Server, row.server_id)
    if server is None or server.deleted or server.status == _WANT[action]:
        return None
    try:
        if action is Action.SUSPEND:
            await walk.step.servers.stop(walk.step.ctx, row.server_id, session=walk.step.session)
        else:
            await walk.step.servers.start(walk.step.ctx, row.server_id, session=walk.step.session)
    except CanopyError as e:
        return Progress.failure(f"{type(e).__name__}: {e}")
    return None


async def _observe(walk: Walk, row: StackResource, want: ServerStatus) -> Progress:
    if row.server_id is None:
        return Progress.complete()
    server = await walk.step.session.get(Server, row.server_id)
    if server is None or server.deleted:
        return Progress.failure(f"Server {row.server_id} was deleted outside the stack.")
    if server.status == want:
        return Progress.complete()
    if server.status == ServerStatus.ERROR:
        why = server.fault_message or "the server went to ERROR"
        return Progress.failure(f'ResourceInError: Went to status ERROR due to "{why}"')
    return Progress()  # the power controller has not finished: the server row wakes us


async def check_walk(walk: Walk) -> Outcome:
    """Confirm every resource's observed state: one step, unless a nested stack is checked
    (the resource waits for its child's check, and only it is looked at again)."""
    rows = walk.current()
    # A resource still in CHECK_IN_PROGRESS: this is a later step of the same check.
    again = any(r.action == Action.CHECK and r.status == Status.IN_PROGRESS for r in rows.values())
    out = Outcome()
    pending = False
    for name, row in sorted(rows.items()):
        progress = await _check(walk, row, again)
        if progress.failed is not None and out.failure is None:
            out.failure = f"resources.{name}: {progress.failed}"
        pending = pending or not (progress.done or progress.failed is not None)
    out.done = not pending
    return out


async def _check(walk: Walk, row: StackResource, again: bool) -> Progress:
    if again and row.action == Action.CHECK:
        if row.status == Status.COMPLETE:
            return Progress.complete()
        if row.status == Status.FAILED:
            return Progress.failure(row.status_reason)
        # Waiting on its child stack's check, or on members waiting on theirs.
        progress = (
            await child_progress(walk, row, Action.CHECK) if nested(row) else Progress.complete()
        )
    else:
        before = Status(row.status)
        walk.begin(row, Action.CHECK, "state changed")
        if before is not Status.COMPLETE:
            return walk.record(row, Progress.failure(f"the resource is {before.value}"))
        progress = await _check_server(walk, row)
        if progress.done and nested(row):
            progress = await start_child(walk, row, Action.CHECK)
    if progress.failed is None:
        # A group's members are checked with it (Heat checks a group's nested stack).
        waiting = False
        for m in await _members(walk, row):
            found = await _check(walk, m, again)
            if found.failed is not None and progress.failed is None:
                progress = Progress.failure(f"resources.{m.name}: {found.failed}")
            waiting = waiting or not (found.done or found.failed is not None)
        if waiting and progress.failed is None:
            progress = Progress()
    return walk.record(row, progress)


async def _check_server(walk: Walk, row: StackResource) -> Progress:
    if row.server_id is None:
        return Progress.complete()
    server = await walk.step.session.get(Server, row.server_id)
    if server is None or server.deleted:
        return Progress.failure(f"Server {row.server_id} does not exist.")
    if server.status not in (ServerStatus.ACTIVE, ServerStatus.SHUTOFF):
        why = f" ({server.fault_message})" if server.fault_message else ""
        return Progress.failure(f"Server is {server.status}{why}.")
    return Progress.complete()
