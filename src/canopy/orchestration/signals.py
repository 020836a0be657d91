"""Signals: written by the API as rows, acted on by the engine in the stack's step.

The controller finds a stack due when it has a signal not yet handled, whatever the stack's
status. Each is handed, oldest first, to its resource's type (registry.SIGNALLED), which
records what it did (at most PER_STEP signals a step, and BYTES_PER_STEP of their bodies:
a deployment's may be 1 MiB, and 200 of them must not be loaded into one step); a
SIGNAL_COMPLETE event says so. A signal carries the row its token was checked against
(`resource_id`): it is ignored if an update replaced that row meanwhile. A signal that
starts an action (a scaling) puts a stack at rest into UPDATE_IN_PROGRESS, and the walk
carries it from there. A signal to a resource that is gone, or to a stack being deleted,
is recorded as ignored.

The API refuses a body whose text no database can store (a lone surrogate, a NUL), but a
row written before that check, or by another path, must not wedge the stack: the engine
replaces such characters with U+FFFD in the data it hands to the resource type and in the
outcome it records, so the step's writes (the resource's data, the SIGNAL event's reason)
always succeed and the signal is marked handled.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Text, cast, delete, func, inspect, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.domain.context import RequestContext
from canopy.orchestration.events import signal_event, stack_event
from canopy.orchestration.resources.base import Step
from canopy.orchestration.resources.registry import SIGNALLED, SIGNALLED_MEMBERS
from canopy.orchestration.states import Action, Desired, Status
from canopy.services.servers import ServerService
from canopy.store.models import Stack, StackResource, StackSignal

log = logging.getLogger("canopy.orchestration")

PER_STEP = 200  # signals handled per step of a stack (the rest in the next)
# ... and their bodies' bytes (a deployment's may be 1 MiB): at least one signal a step.
BYTES_PER_STEP = 4 << 20
MAX_PENDING = 100  # unhandled signals kept per resource; the API refuses more (429)
KEEP_HANDLED = 200  # handled signals kept per stack (their events stay)

# What no text column takes on one database or the other: lone surrogates (not UTF-8)
# and NUL (PostgreSQL).
_UNSTORABLE = re.compile("[\ud800-\udfff\x00]")


def has_pending() -> ColumnElement[bool]:
    """A stack has a signal the engine has not handled yet.

    `id IN (the stacks with one)`, not a correlated EXISTS: the loop's "what is due" is
    `(in progress and ...) OR this`, and SQLite searches an OR by an index for each side
    only when each side has one (the status index, the primary key); with an EXISTS it
    scanned every stack at every pass. The unhandled signals are few: a partial index
    holds them (migration 0032).
    """
    return Stack.id.in_(select(StackSignal.stack_id).where(StackSignal.handled_at.is_(None)))


async def handle_signals(
    s: AsyncSession, stack: Stack, now: datetime, servers: ServerService
) -> int:
    """Act on the stack's pending signals; returns how many were handled."""
    pending = list(
        (
            await s.execute(
                select(StackSignal)
                .where(StackSignal.seq.in_(await _next_batch(s, stack)))
                .order_by(StackSignal.seq)
            )
        ).scalars()
    )
    if not pending:
        return 0
    ctx = RequestContext(project_id=stack.project_id, user_id=stack.user_id)
    step = Step(s, stack, servers.clock, servers, ctx)
    rows = {
        r.name: r
        for r in (
            await s.execute(
                select(StackResource)
                .where(
                    StackResource.stack_id == stack.id,
                    or_(
                        StackResource.group_id.is_(None),
                        StackResource.type.in_(SIGNALLED_MEMBERS),
                    ),
                    StackResource.desired == Desired.PRESENT,
                )
                # Members first: a template's resource of the same name wins the name.
                .order_by(StackResource.group_id.is_(None))
            )
        ).scalars()
    }
    started: list[str] = []
    for sig in pending:
        row = rows.get(sig.resource_name)
        taker = SIGNALLED.get(row.type) if row is not None else None
        if stack.deleted or (stack.action == Action.DELETE):
            outcome = "ignored: the stack is being deleted"
        elif row is None or taker is None:
            outcome = "ignored: the resource is gone"
        elif sig.resource_id is not None and sig.resource_id != row.id:
            # Checked against a row an update has replaced since (its token, not this
            # one's): the old handle's agent must not complete the new wait.
            outcome = "ignored: the resource was replaced"
        else:
            data = safe(sig.data or {})
            stack_id, name, seq = stack.id, row.name, sig.seq
            try:
                # A savepoint: a handler that fails leaves nothing half done, and the
                # signal is still marked handled (else it would be retried forever).
                async with s.begin_nested():
                    handled = await taker.signal(
                        step, row, dict(data) if isinstance(data, dict) else {}
                    )
            except SQLAlchemyError:
                raise  # the database, not the signal: the step is tried again
            except Exception as e:
                log.exception("stack %s: signal %s to %s failed", stack_id, seq, name)
                outcome = safe_text(f"failed: {type(e).__name__}: {e}"[:500])
                await _reload(s, [stack, *rows.values(), *pending])
            else:
                outcome = safe_text(handled.outcome)
                if handled.started:
                    started.append(name)
        sig.handled_at = now
        sig.outcome = outcome
        _signal_event(s, stack, sig, row, outcome, now)
    if started and stack.status != Status.IN_PROGRESS:
        reason = f"Stack UPDATE started (signal to {', '.join(started)})"
        stack.action = Action.UPDATE
        stack.status = Status.IN_PROGRESS
        stack.status_reason = reason
        stack.action_started_at = now
        stack.updated_at = now
        stack.next_attempt_at = now
        stack.retries = 0
        stack_event(s, stack, Action.UPDATE, Status.IN_PROGRESS, reason, now)
    await _prune(s, stack)
    return len(pending)


async def _next_batch(s: AsyncSession, stack: Stack) -> list[int]:
    """The oldest pending signals' seqs, at most PER_STEP of them and BYTES_PER_STEP of
    data (measured by the database, so a big body is not loaded to be measured)."""
    sizes = (
        await s.execute(
            select(StackSignal.seq, func.length(cast(StackSignal.data, Text)))
            .where(StackSignal.stack_id == stack.id, StackSignal.handled_at.is_(None))
            .order_by(StackSignal.seq)
            .limit(PER_STEP)
        )
    ).all()
    out: list[int] = []
    total = 0
    for seq, size in sizes:
        total += size or 0
        if out and total > BYTES_PER_STEP:
            break
        out.append(seq)
    return out


async def _reload(s: AsyncSession, rows: list[Any]) -> None:
    """Load again what a rolled-back savepoint expired (no lazy loads in async code)."""
    for row in rows:
        state = inspect(row)
        if state.expired_attributes and not state.was_deleted and state.persistent:
            await s.refresh(row)


def safe_text(text: str) -> str:
    """`text` with every character no database column can store replaced by U+FFFD."""
    return _UNSTORABLE.sub("\ufffd", text)


def safe(value: Any) -> Any:
    """A copy of `value` (JSON) with `safe_text` applied to every string and key in it.

    Iterative: the data may be nested as deep as the JSON parser allowed."""
    root: list[Any] = [value]
    work: list[tuple[Any, Any]] = [(root, 0)]
    while work:
        holder, key = work.pop()
        node = holder[key]
        if isinstance(node, str):
            holder[key] = safe_text(node)
        elif isinstance(node, dict):
            copied = {safe_text(str(k)): v for k, v in node.items()}
            holder[key] = copied
            work.extend((copied, k) for k in copied)
        elif isinstance(node, list):
            items = list(node)
            holder[key] = items
            work.extend((items, i) for i in range(len(items)))
    return root[0]


async def _prune(s: AsyncSession, stack: Stack) -> None:
    """Keep the newest KEEP_HANDLED handled signals of the stack: a URL signalled in a
    loop must not grow the table without end."""
    cutoff = await s.scalar(
        select(StackSignal.seq)
        .where(StackSignal.stack_id == stack.id, StackSignal.handled_at.is_not(None))
        .order_by(StackSignal.seq.desc())
        .offset(KEEP_HANDLED)
        .limit(1)
    )
    if cutoff is not None:
        await s.execute(
            delete(StackSignal).where(
                StackSignal.stack_id == stack.id,
                StackSignal.handled_at.is_not(None),
                StackSignal.seq <= cutoff,
            )
        )


def _signal_event(
    s: AsyncSession,
    stack: Stack,
    sig: StackSignal,
    row: StackResource | None,
    outcome: str,
    now: datetime,
) -> None:
    reason = safe_text(f"Signal: {outcome}"[:2000])
    signal_event(s, stack, sig.resource_name, row, reason, now)
