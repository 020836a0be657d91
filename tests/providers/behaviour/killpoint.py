"""`canopy` with one kill point, for the tests that kill workers over real clouds.

Run as `python killpoint.py worker --config FILE` in place of the `canopy` script. When
the file named by `KILLPOINT_ARMED` exists, the first create of an `ec2` or `openstack`
driver to get the cloud's answer after that removes the file, writes what the cloud
answered to `<file>.answered` and sends SIGKILL to its own process. The worker dies after
the cloud made the server and before canopy wrote down its id: the moment an idempotent
create must survive, hit on purpose rather than by luck. With `KILLPOINT_AT=offerings`
the kill point is the driver's answer to `offerings` instead: the worker dies in the
middle of an inventory pass, holding the cloud's inventory job. Nothing else differs from
`canopy worker`: the drivers, the controllers and the database are canopy's own.

SIGUSR1 makes it print where it is (every thread's stack and every asyncio task's) into
its log: what a test shows when the worker did not get where it was expected to.
"""

from __future__ import annotations

import asyncio
import faulthandler
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ARMED = "KILLPOINT_ARMED"
AT = "KILLPOINT_AT"  # "create" (the default) or "offerings"
HERE = str(Path(__file__).resolve())

Method = Callable[..., Awaitable[Any]]


def _die(answered: Path, what: str) -> None:
    """Write down what the cloud answered, then SIGKILL this process (no await between the
    driver's answer and here: nothing of canopy's runs in between)."""
    answered.write_text(what)
    os.kill(os.getpid(), signal.SIGKILL)


def _where(signum: int, frame: object) -> None:
    """SIGUSR1: every thread's stack, then every task of the running loop (if any)."""
    faulthandler.dump_traceback(all_threads=True)
    try:
        tasks = asyncio.all_tasks()
    except RuntimeError:  # no loop running in this thread
        tasks = set()
    try:
        print(f"--- {len(tasks)} asyncio tasks", file=sys.stderr)
        for task in tasks:
            task.print_stack(limit=8, file=sys.stderr)
        sys.stderr.flush()
    except Exception:  # stderr busy (a reentrant write): the threads' dump stands
        pass


def _killing(method: Method, said: Callable[[Any, Any], str]) -> Method:
    """`method`, which dies after its answer if armed; `said(args, answer)` is what the
    answer is written down as."""

    async def then_die_if_armed(self: Any, *args: Any) -> Any:
        answer = await method(self, *args)
        armed = os.environ.get(ARMED)
        if armed:
            try:
                os.unlink(armed)  # the first call to answer takes it
            except FileNotFoundError:
                return answer
            _die(Path(f"{armed}.answered"), said(args, answer))
        return answer

    return then_die_if_armed


def _created(args: Any, remote: Any) -> str:
    return f"{args[0].canopy_id} {remote.remote_id}\n"


def _offered(args: Any, offerings: Any) -> str:
    return f"offerings {len(offerings)}\n"


def install() -> None:
    from canopy.providers.ec2.driver import Ec2Compute
    from canopy.providers.openstack.driver import OpenStackCompute

    for cls in (Ec2Compute, OpenStackCompute):
        if os.environ.get(AT, "create") == "offerings":
            cls.offerings = _killing(cls.offerings, _offered)  # type: ignore[method-assign,assignment]
        else:
            cls.create = _killing(cls.create, _created)  # type: ignore[method-assign,assignment]


if __name__ == "__main__":
    signal.signal(signal.SIGUSR1, _where)  # first: SIGUSR1's default is to end the process
    install()
    from canopy.cli.main import main

    main()
