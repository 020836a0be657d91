"""The orchestration loop: steps every stack that has work, as soon as it has it.

A stack has work while its status is IN_PROGRESS, and is due when (a) its `next_attempt_at`
has come (set to now by the API's create, update and delete, and by the engine to the end
of a time-based wait or the stack's timeout), or (b) one of its resources waits on a server
that has reached an answer (ACTIVE, SHUTOFF or ERROR for a create, gone for a delete). (b)
is read from the server rows themselves, so nothing has to remember to tell the stack: the
loop is woken after a sync or power pass and finds it. Due stacks are leased (`SKIP LOCKED`
on PostgreSQL, so several workers share them) and each is stepped in its own transaction
with its row locked; a worker that dies mid-step rolls back and the next worker repeats it.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.controllers.runtime import Runtime
from canopy.domain.context import RequestContext
from canopy.domain.errors import InvalidRequest
from canopy.domain.states import ServerStatus
from canopy.orchestration.binding import bind_stack
from canopy.orchestration.events import hold_events, stack_event, write_events
from canopy.orchestration.lifecycle import check_walk, power_walk
from canopy.orchestration.nesting import child_answered
from canopy.orchestration.prefetch import prefetch
from canopy.orchestration.resources.base import Step
from canopy.orchestration.rollback import can_roll_back, start_rollback, stop_all
from canopy.orchestration.signals import handle_signals, has_pending
from canopy.orchestration.states import Action, Status
from canopy.orchestration.template import BoundTemplate, StackIdentity, TemplateError
from canopy.orchestration.walk import Outcome, Walk
from canopy.services.servers import ServerService
from canopy.store.leases import lease_rows, unleased
from canopy.store.models import Server, Stack, StackResource
from canopy.store.plans import rare

log = logging.getLogger("canopy.orchestration")

_ANSWERED = (ServerStatus.ACTIVE, ServerStatus.SHUTOFF, ServerStatus.ERROR)
_CACHE = 256  # bound templates kept, by (stack, generation)


def _server_answered() -> ColumnElement[bool]:
    """A stack has a resource waiting on a server that has answered."""
    return exists(
        select(StackResource.id)
        .join(Server, Server.id == StackResource.server_id)
        .where(
            StackResource.stack_id == Stack.id,
            StackResource.status == Status.IN_PROGRESS,
            or_(
                Server.deleted.is_(True),
                and_(
                    StackResource.action.in_((Action.CREATE, Action.ADOPT, Action.UPDATE)),
                    Server.status.in_(_ANSWERED),
                ),
                and_(
                    StackResource.action == Action.SUSPEND,
                    Server.status.in_((ServerStatus.SHUTOFF, ServerStatus.ERROR)),
                ),
                and_(
                    StackResource.action == Action.RESUME,
                    Server.status.in_((ServerStatus.ACTIVE, ServerStatus.ERROR)),
                ),
            ),
        )
    )


class OrchestrationController:
    """The stack loop of a worker."""

    name = "orchestration"

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.servers = ServerService(rt.db, rt.settings, rt.clock)
        self.next_due_at: datetime | None = None
        self._bound: OrderedDict[tuple[str, int], BoundTemplate] = OrderedDict()
        # The parts of `_due` that do not depend on the time, built once: building their
        # subqueries cost more than running the pass's first query.
        self._answered = or_(_server_answered(), child_answered())
        self._pending = has_pending()

    def next_due_in(self, now: datetime) -> float | None:
        """Seconds until the earliest time-based wait ends, as of the last pass."""
        if self.next_due_at is None:
            return None
        return (self.next_due_at - now).total_seconds()

    def _due(self, now: datetime) -> ColumnElement[bool]:
        # An IN_PROGRESS stack always has a next attempt now (at the latest its action's
        # limit); one without is a row from before the default limit, left to wait on its
        # servers with nothing to time out: stepped once, it is given its deadline.
        # `rare`: after ANALYZE (nearly every stack COMPLETE), SQLite took the status
        # index for unselective and scanned every stack at every pass.
        return or_(
            and_(
                rare(Stack.status == Status.IN_PROGRESS),
                or_(Stack.next_attempt_at <= now, Stack.next_attempt_at.is_(None), self._answered),
            ),
            self._pending,  # a signal to act on, whatever the stack's status
        )

    async def run_once(self) -> int:
        """Step every stack due now; returns how many were stepped."""
        rt = self.rt
        now = rt.clock.now()
        due = self._due(now)
        async with rt.db.read() as s:
            found = await s.execute(
                select(Stack.id).where(due, unleased(Stack, rt.lease_now())).limit(1)
            )
            if found.first() is None:
                await self._earliest(s)
                return 0
        total = 0
        batch = rt.settings.controllers.batch_size
        while True:
            async with rt.db.session() as s:
                rows = await lease_rows(
                    s,
                    Stack,
                    where=[due],
                    worker=rt.worker_id,
                    now=rt.lease_now(),
                    lease_seconds=rt.lease_seconds,
                    limit=batch,
                    order_by=[Stack.created_at],
                )
                ids = [r.id for r in rows]
            for stack_id in ids:
                try:
                    async with rt.db.session() as s:
                        await self._step(s, stack_id)
                except Exception as e:
                    # Rolled back; the lease runs out and a later pass repeats the step,
                    # until the stack's deadline: then it fails, whatever went wrong.
                    log.exception("stack %s: step failed", stack_id)
                    await self._failed_step(stack_id, e)
            total += len(ids)
            if len(ids) < batch:
                break
        if total:
            rt.notify("placement", "power")  # servers to place or delete, committed
        async with rt.db.read() as s:
            await self._earliest(s)
        return total

    async def _earliest(self, s: AsyncSession) -> None:
        self.next_due_at = await s.scalar(
            select(func.min(Stack.next_attempt_at)).where(Stack.status == Status.IN_PROGRESS)
        )

    async def _failed_step(self, stack_id: str, error: Exception) -> None:
        """After a step that raised (and rolled back): past its deadline, the stack fails
        (and rolls back if it may), as a timeout does, with the error's kind as the reason.
        A step that keeps failing thus ends with the stack's timeout, never IN_PROGRESS
        forever."""
        now = self.rt.clock.now()
        try:
            async with self.rt.db.session() as s:
                stack = await s.scalar(select(Stack).where(Stack.id == stack_id).with_for_update())
                if stack is None or stack.status != Status.IN_PROGRESS:
                    return
                if stack.claimed_by != self.rt.worker_id:
                    return  # its lease ran out meanwhile: another worker's stack now
                minutes, deadline = action_deadline(stack, self.rt)
                if now < deadline:
                    return
                hold_events(s)
                reason = f"Timed out after {minutes} minutes (the last step failed: "
                reason += f"{type(error).__name__})"
                action = Action(stack.action)
                await stop_all(s, stack, now, f"{action.value} aborted: the stack failed")
                previous = stack.previous
                _finish(s, stack, Status.FAILED, reason, now)
                stack.claimed_by = None
                stack.claim_expires_at = None
                if not stack.disable_rollback and can_roll_back(action, previous):
                    stack.previous = previous
                    await start_rollback(s, stack, now, f"{action.value} aborted: rolling back")
                await write_events(s, stop=True)
        except Exception:
            log.exception("stack %s: could not fail it at its deadline", stack_id)

    def _bind(self, stack: Stack) -> BoundTemplate:
        key = (stack.id, stack.generation)
        found = self._bound.get(key)
        if found is None:
            identity = StackIdentity(
                stack.name, stack.id, stack.project_id, self.rt.settings.identity.region
            )
            found = bind_stack(
                stack.template, stack.files, stack.environment, stack.parameters, identity
            )
            self._bound[key] = found
            while len(self._bound) > _CACHE:
                self._bound.popitem(last=False)
        self._bound.move_to_end(key)
        return found

    async def _step(self, s: AsyncSession, stack_id: str) -> None:
        stack = (
            await s.execute(select(Stack).where(Stack.id == stack_id).with_for_update())
        ).scalar_one_or_none()
        if stack is None or stack.claimed_by != self.rt.worker_id:
            return  # gone, or taken over after our lease ran out
        stack.claimed_by = None
        stack.claim_expires_at = None
        await handle_signals(s, stack, self.rt.clock.now(), self.servers)
        if stack.status != Status.IN_PROGRESS:
            return
        await step_stack(s, stack, self.rt.clock.now(), self._bind, self.servers, self.rt)


async def step_stack(
    s: AsyncSession,
    stack: Stack,
    now: datetime,
    bind: Callable[[Stack], BoundTemplate],
    servers: ServerService,
    rt: Runtime,
) -> Outcome:
    """Walk `stack` as far as it goes now and record where it stands."""
    hold_events(s)  # written together at the end (events.py)
    out = await _step_stack(s, stack, now, bind, servers, rt)
    await write_events(s, stop=True)
    return out


async def _step_stack(
    s: AsyncSession,
    stack: Stack,
    now: datetime,
    bind: Callable[[Stack], BoundTemplate],
    servers: ServerService,
    rt: Runtime,
) -> Outcome:
    rows = list(
        (
            await s.execute(
                select(StackResource).where(
                    StackResource.stack_id == stack.id,
                    StackResource.group_id.is_(None),  # members are their group's
                )
            )
        ).scalars()
    )
    ctx = RequestContext(project_id=stack.project_id, user_id=stack.user_id)
    action = Action(stack.action)
    walk = Walk(Step(s, stack, rt.clock, servers, ctx), rows, now)
    if action is Action.ADOPT:
        walk.adopting = stack.adopt_data or {}
    await prefetch(walk.step, rows)
    out = await _walk(walk, stack, action, bind)
    minutes, deadline = action_deadline(stack, rt)
    if out.failure is None and not out.done and now >= deadline:
        out.failure = f"Timed out after {minutes} minutes"
    if out.failure is not None:
        reason = f"Resource {action.value} failed: {out.failure}"
        if out.failure.startswith("Timed out"):
            reason = out.failure
        walk.cancel(f"{action.value} aborted: the stack failed", keep=lambda r: False)
        if action is Action.ADOPT:
            # A group's members still adopting stop too, and let go of their servers: the
            # adopt never took them (the walk's cancel sees only the template's rows).
            await stop_all(s, stack, now, f"{action.value} aborted: the stack failed")
        previous = stack.previous
        _finish(s, stack, Status.FAILED, reason, now)
        if not stack.disable_rollback and can_roll_back(action, previous):
            stack.previous = previous
            await start_rollback(s, stack, now, f"{action.value} aborted: rolling back")
    elif out.done:
        _finish(s, stack, Status.COMPLETE, f"Stack {action.value} completed successfully", now)
    else:
        stack.next_attempt_at = deadline if out.until is None else min(out.until, deadline)
    return out


def action_deadline(stack: Stack, rt: Runtime) -> tuple[int, datetime]:
    """The stack's action's time limit in minutes, and when it ends."""
    minutes = stack.timeout_mins or rt.settings.orchestration.stack_action_timeout_minutes
    return minutes, stack.action_started_at + timedelta(minutes=minutes)


async def _walk(
    walk: Walk, stack: Stack, action: Action, bind: Callable[[Stack], BoundTemplate]
) -> Outcome:
    """Take the stack's action as far as it goes now."""
    if action is Action.DELETE or (action is Action.ROLLBACK and stack.previous is None):
        return await walk.backward()  # a delete, or a create's rollback
    if action in (Action.SUSPEND, Action.RESUME):
        return await power_walk(walk, action)
    if action is Action.CHECK:
        return await check_walk(walk)
    try:
        bound = bind(stack)
    except (TemplateError, InvalidRequest) as e:
        return Outcome(failure=str(e))
    out = await walk.forward(bound, stack.generation)
    if out.done and out.failure is None:
        out = await walk.backward()  # the clean-up: replaced and removed resources
    return out


def _finish(s: AsyncSession, stack: Stack, status: Status, reason: str, now: datetime) -> None:
    stack.status = status
    stack.status_reason = reason
    stack.next_attempt_at = None
    stack.previous = None  # a rollback, if one follows, takes it before this
    stack.adopt_data = None  # an adopt's data is read only while it goes
    if stack.action == Action.DELETE and status is Status.COMPLETE:
        stack.deleted = True
        stack.deleted_at = now
    stack_event(s, stack, stack.action, status, reason, now)
