"""`canopy` with one kill point, for the tests that kill workers over real clouds.

Run as `python killpoint.py worker --config FILE` in place of the `canopy` script. When
the file named by `KILLPOINT_ARMED` exists, the first create of an `ec2` or `openstack`
driver to get the cloud's answer after that removes the file, writes what the cloud
answered to `<file>.answered` and sends SIGKILL to its own process. The worker dies after
the cloud made the server and before canopy wrote down its id: the moment an idempotent
create must survive, hit on purpose rather than by luck. Nothing else differs from
`canopy worker`: the drivers, the controllers and the database are canopy's own.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ARMED = "KILLPOINT_ARMED"
HERE = str(Path(__file__).resolve())

Create = Callable[[Any, Any], Awaitable[Any]]


def _die(answered: Path, what: str) -> None:
    """Write down what the cloud answered, then SIGKILL this process (no await between the
    driver's answer and here: nothing of canopy's runs in between)."""
    answered.write_text(what)
    os.kill(os.getpid(), signal.SIGKILL)


def _killing(create: Create) -> Create:
    async def create_then_die_if_armed(self: Any, spec: Any) -> Any:
        remote = await create(self, spec)
        armed = os.environ.get(ARMED)
        if armed:
            try:
                os.unlink(armed)  # the first create to answer takes it
            except FileNotFoundError:
                return remote
            _die(Path(f"{armed}.answered"), f"{spec.canopy_id} {remote.remote_id}\n")
        return remote

    return create_then_die_if_armed


def install() -> None:
    from canopy.providers.ec2.driver import Ec2Compute
    from canopy.providers.openstack.driver import OpenStackCompute

    for cls in (Ec2Compute, OpenStackCompute):
        cls.create = _killing(cls.create)  # type: ignore[method-assign,assignment]


if __name__ == "__main__":
    install()
    from canopy.cli.main import main

    main()
