"""Abilities, checked before a request is accepted: a cloud that cannot do something says
why, and a request that needs it is refused at once (409, the reason in Nova's fault body)
instead of being accepted and failing later in a controller.

What a cloud cannot do is the driver's own declaration (`providers.base.Abilities`),
recorded on the cloud's row by the workers (`clouds.abilities`, see controllers/health.py):
the API never builds or calls a driver. A cloud whose row has no record yet (no worker
has run since it was added) is taken to have every ability, and a refusal by the cloud
still ends the action with an error event, as before.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.domain.errors import Conflict
from canopy.domain.states import Ability
from canopy.store.models import Cloud, Server

# Which ability each server action needs.
NEEDS: dict[str, Ability] = {
    "stop": Ability.STOP_START,
    "start": Ability.STOP_START,
    "reboot": Ability.REBOOT,
}

_WHAT = {
    Ability.STOP_START: "stop and start servers",
    Ability.REBOOT: "reboot servers",
    Ability.KEYPAIRS: "import key pairs",
    Ability.CHANGES_SINCE: "list changes since a time",
    Ability.HOSTS: "list its physical hosts",
}


async def why_not(s: AsyncSession, cloud: str | None, ability: Ability) -> str | None:
    """Why `cloud` cannot do `ability`, or None if it can (or is not known yet)."""
    if cloud is None:
        return None
    missing = (
        await s.execute(select(Cloud.abilities).where(Cloud.name == cloud))
    ).scalar_one_or_none()
    if not missing:
        return None
    reason = missing.get(ability.value)
    return None if reason is None else str(reason)


async def require_for_action(s: AsyncSession, server: Server, action: str) -> None:
    """Conflict (409) naming the reason if `server`'s cloud cannot do `action`."""
    ability = NEEDS.get(action)
    if ability is None:
        return
    why = await why_not(s, server.cloud, ability)
    if why is not None:
        raise Conflict(
            f"Cannot '{action}' instance {server.id}: its availability zone {server.cloud} "
            f"cannot {_WHAT[ability]}: {why}"
        )
