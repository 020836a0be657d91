"""What an exception out of a resource's step becomes: that resource's failure, with why.

A type's step, or the resolving of its properties, reports what it cannot do as a failed
`Progress`. An exception it did not foresee, from data no check caught (a TypeError, a
KeyError, an OverflowError ...), would roll the whole stack step back and be met again by
every later pass, with the stack IN_PROGRESS forever. So it fails that resource instead:
the stack fails as for any resource failure, the root cause in its reason. Any other
exception (a database error, a worker's crash, a "retry later") rolls the step back and
the step is repeated, which may cure it; the stack's deadline bounds those (controller.py).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable

from sqlalchemy.exc import SQLAlchemyError

from canopy.domain.errors import CanopyError, RetryLater, TransientError
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


async def guarded(call: Awaitable[Progress], name: str) -> Progress:
    """What a type's step said, or the resource's failure for what `fails`."""
    try:
        return await call
    except Exception as e:
        if not fails(e):
            raise
        return Progress.failure(reason(e, name))
