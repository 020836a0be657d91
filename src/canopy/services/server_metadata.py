"""A server's metadata after create (Nova's server-metadata API): canopy's record only.

The change is written to the server row and shown by every read (`server show`, lists,
Heat's `show` attribute); it is not pushed to the backing cloud, whose copy keeps the
metadata the server was created with (docs/architecture.md, "Server metadata after
create"). The rules are Nova's: keys 1-255 characters, values 0-255, strings only; the
project's `metadata_items` quota (403); a locked server (409 unless cloud admin) or one
not ACTIVE/SHUTOFF at rest (409, e.g. building or being deleted) is not changed. A change
is announced as `compute.instance.update` in its transaction; a refused one sends nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.ext.asyncio import AsyncSession

from canopy.domain.context import RequestContext
from canopy.domain.errors import Conflict, InvalidRequest, NotFound, QuotaError
from canopy.domain.states import DesiredState, ServerStatus
from canopy.domain.text import NUL, SURROGATE
from canopy.notifications.outbox import server_updated
from canopy.services import quotas
from canopy.services.server_input import check_metadata_keys
from canopy.services.server_scope import ServerScope
from canopy.store.models import Server

MAX_KEY = 255
MAX_VALUE = 255

# Nova's `check_instance_state(vm_state=[ACTIVE, PAUSED, SUSPENDED, STOPPED],
# task_state=None)` on update_instance_metadata / delete_instance_metadata, in canopy's
# statuses (canopy has no PAUSED or SUSPENDED): `_check_changeable` below.


class ServerMetadata(ServerScope):
    """ServerService's reads and writes of one server's metadata."""

    async def metadata(
        self, ctx: RequestContext, server_id: str, *, session: AsyncSession | None = None
    ) -> dict[str, str]:
        """A live server's metadata."""
        async with self._unit(session, write=False) as s:
            server = await self.get(ctx, server_id, include_deleted=False, session=s)
            return dict(server.metadata_ or {})

    async def metadata_item(
        self,
        ctx: RequestContext,
        server_id: str,
        key: str,
        *,
        session: AsyncSession | None = None,
    ) -> str:
        """One item's value; NotFound (Nova's words) when the server has no such key."""
        found = await self.metadata(ctx, server_id, session=session)
        if key not in found:
            raise NotFound("Metadata item was not found")
        return found[key]

    async def set_metadata(
        self,
        ctx: RequestContext,
        server_id: str,
        metadata: Mapping[str, object],
        *,
        replace: bool,
        session: AsyncSession | None = None,
    ) -> dict[str, str]:
        """Merge `metadata` into the server's (`replace`: it becomes the server's whole
        metadata); return the server's metadata after. Nothing changes on any error."""
        clean = check_metadata(metadata)
        async with self._unit(session) as s:
            server = await self._get_for_update(s, ctx, server_id)
            _check_changeable(ctx, server, "update metadata")
            after = dict(clean) if replace else {**(server.metadata_ or {}), **clean}
            limit = (await quotas.limits(s, self.settings, server.project_id))["metadata_items"]
            if 0 <= limit < len(after):
                raise QuotaError(f"Maximum number of metadata items exceeds {limit}")
            server.metadata_ = after  # a new dict: the JSON column sees the change
            server.updated_at = self.clock.now()
            await server_updated(s, server, server.updated_at)
            return dict(after)

    async def delete_metadata_item(
        self,
        ctx: RequestContext,
        server_id: str,
        key: str,
        *,
        session: AsyncSession | None = None,
    ) -> None:
        """Remove one item: NotFound when the server has no such key, before the state
        check (Nova's order)."""
        async with self._unit(session) as s:
            server = await self._get_for_update(s, ctx, server_id)
            current = dict(server.metadata_ or {})
            if key not in current:
                raise NotFound("Metadata item was not found")
            _check_changeable(ctx, server, "delete metadata")
            del current[key]
            server.metadata_ = current
            server.updated_at = self.clock.now()
            await server_updated(s, server, server.updated_at)


def check_metadata(metadata: Mapping[str, object]) -> dict[str, str]:
    """The metadata if every key and value is acceptable; else InvalidRequest."""
    if not isinstance(metadata, Mapping):
        raise InvalidRequest(
            "Invalid input for field/attribute metadata. Value: (metadata). "
            "It is not of type 'object'"
        )
    out: dict[str, str] = {}
    for key, value in metadata.items():
        if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY or not _text(key):
            raise InvalidRequest(
                f"Invalid input for field/attribute metadata. Value: {_shown(key)}. A key "
                f"is 1 to {MAX_KEY} characters of text (no NUL)."
            )
        if not isinstance(value, str):
            raise InvalidRequest(
                f"Invalid input for field/attribute {_shown(key)}. Value: {_shown(value)}. "
                f"{_shown(value)} is not of type 'string'"
            )
        if len(value) > MAX_VALUE or not _text(value):
            raise InvalidRequest(
                f"Invalid input for field/attribute {_shown(key)}. A value is at most "
                f"{MAX_VALUE} characters of text (no NUL)."
            )
        out[key] = value
    check_metadata_keys(out)
    return out


def _check_changeable(ctx: RequestContext, server: Server, what: str) -> None:
    """Nova's order: the lock, then the vm_state, then the task_state."""
    if server.locked and not ctx.is_cloud_admin:
        raise Conflict(f"Instance {server.id} is locked")
    vm_state = _VM_STATES.get(str(server.status), str(server.status).lower())
    if vm_state not in _CHANGEABLE_VM_STATES:
        raise Conflict(f"Cannot '{what}' instance {server.id} while it is in vm_state {vm_state}")
    if server.desired_state == DesiredState.DELETED or server.task_state is not None:
        state = server.task_state or "deleting"
        raise Conflict(f"Cannot '{what}' instance {server.id} while it is in task_state {state}")


# Canopy's statuses as Nova's vm_states (a reboot is an ACTIVE server with a task).
_VM_STATES: dict[str, str] = {
    ServerStatus.ACTIVE: "active",
    ServerStatus.SHUTOFF: "stopped",
    ServerStatus.REBOOT: "active",
    ServerStatus.HARD_REBOOT: "active",
    ServerStatus.BUILD: "building",
    ServerStatus.ERROR: "error",
    ServerStatus.DELETED: "deleted",
}
_CHANGEABLE_VM_STATES = frozenset({"active", "stopped"})


def _text(value: str) -> bool:
    """False for a NUL or a lone surrogate (no column holds either: domain/text.py)."""
    return NUL.search(value) is None and SURROGATE.search(value) is None


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
