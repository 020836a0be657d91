"""What an exception out of a resource's step becomes: that resource's failure, with why.

A type's step, or the resolving of its properties, reports what it cannot do as a failed
`Progress`. An exception it did not foresee, from data no check caught (a TypeError, a
KeyError, an OverflowError ...), would roll the whole stack step back and be met again by
every later pass, with the stack IN_PROGRESS forever. So it fails that resource instead:
the stack fails as for any resource failure, the root cause in its reason. Any other
exception (a database error, a worker's crash, a "retry later") rolls the step back and
the step is repeated, which may cure it; the stack's deadline bounds those (controller.py).

A type's step runs in a savepoint (`guarded`): what it wrote before such an error (rows,
a server, events) is rolled back with it, and only the resource's failure is committed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import inspect
from sqlalchemy.exc import InvalidRequestError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.domain.errors import CanopyError, RetryLater, TransientError
from canopy.orchestration.events import EventsMark, events_mark, undo_events
from canopy.orchestration.resources.base import Progress
from canopy.orchestration.template import TemplateError

log = logging.getLogger("canopy.orchestration")

# What a repeat of the step may not meet again.
_RETRIED = (SQLAlchemyError, TransientError, RetryLater)
# What the same data raises again at every repeat (TemplateError is a ValueError).
_FAILS = (CanopyError, ArithmeticError, LookupError, TypeError, ValueError, AttributeError)


def fails(e: Exception) -> bool:
    """Does `e` fail the resource (rather than roll the step back)?"""
    return isinstance(e, _FAILS) and not isinstance(e, _RETRIED)


def reason(e: Exception, name: str) -> str:
    """The failure reason of `e`, raised while stepping resource `name` (see `fails`)."""
    if isinstance(e, CanopyError | TemplateError):
        return str(e)  # a refusal canopy worded
    log.error("resources.%s: unexpected error in its step", name, exc_info=e)
    return f"{type(e).__name__}: {e}"


async def guarded(
    s: AsyncSession,
    call: Callable[[], Awaitable[Progress]],
    name: str,
    record: Callable[[Progress], Progress],
    undone: Callable[[], None],
    *,
    savepoint: bool = True,
) -> Progress:
    """What a type's step (`call`, run in a savepoint of `s`) said, or the resource's
    failure for what `fails`, passed to `record`: in the savepoint when the step returned;
    after it rolled back everything the step wrote when it raised (`undone` is called
    then: what the caller kept of the session's rows may have changed). Without
    `savepoint` (a step that writes only its own row, after its reads) the failure is
    recorded as it stands."""
    if not savepoint:
        try:
            return record(await call())
        except Exception as e:
            if not fails(e):
                raise
            return record(Progress.failure(reason(e, name)))
    mark = events_mark(s)
    try:
        async with s.begin_nested():
            return record(await call())
    except Exception as e:
        if not fails(e):
            raise
        await rolled_back(s, mark)
        undone()
        return record(Progress.failure(reason(e, name)))


async def rolled_back(s: AsyncSession, mark: EventsMark) -> None:
    """After a savepoint of `s` rolled back: forget the events held since `mark`
    (`events_mark`) and load again every row the rollback expired (async code may not
    load lazily); one whose row is gone with the savepoint leaves the session."""
    undo_events(s, mark)
    for obj in list(s.identity_map.values()):
        state = inspect(obj)
        if not state.expired_attributes or state.was_deleted or not state.persistent:
            continue
        try:
            await s.refresh(obj)
        except InvalidRequestError:  # written in the savepoint as already persistent
            s.expunge(obj)
