"""Nova's server statuses in the shared vocabulary, and a Nova server as a RemoteServer."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from canopy.domain.specs import RemoteServer
from canopy.domain.states import RemoteState
from canopy.providers.base import CANOPY_ID_META, INSTALLATION_META

# One table: every status Nova's API can show (nova/api/openstack/common.py). A server
# busy with an operator's task it stays up through (migrating, resizing) is running; one
# that is not up (paused, suspended, shelved, rescued) is stopped to canopy, which shows
# it SHUTOFF until the operator brings it back.
NOVA_STATES: Mapping[str, RemoteState] = {
    "BUILD": RemoteState.PENDING,
    "REBUILD": RemoteState.PENDING,
    "ACTIVE": RemoteState.RUNNING,
    "MIGRATING": RemoteState.RUNNING,
    "RESIZE": RemoteState.RUNNING,
    "VERIFY_RESIZE": RemoteState.RUNNING,
    "REVERT_RESIZE": RemoteState.RUNNING,
    "PASSWORD": RemoteState.RUNNING,
    "REBOOT": RemoteState.REBOOTING,
    "HARD_REBOOT": RemoteState.REBOOTING,
    "SHUTOFF": RemoteState.STOPPED,
    "PAUSED": RemoteState.STOPPED,
    "SUSPENDED": RemoteState.STOPPED,
    "RESCUE": RemoteState.STOPPED,
    "SHELVED": RemoteState.STOPPED,
    "SHELVED_OFFLOADED": RemoteState.STOPPED,
    "ERROR": RemoteState.ERROR,
    "DELETED": RemoteState.DELETED,
    "SOFT_DELETED": RemoteState.DELETED,
    "UNKNOWN": RemoteState.UNKNOWN,
}

# The scheduler's answer when no host fits (nova.exception.NoValidHost), as the fault
# message of a server that went to ERROR: a capacity error, not a failed boot.
NO_VALID_HOST = "No valid host was found"


def remote_state(status: str | None) -> RemoteState:
    """A Nova status in the shared vocabulary; one it does not know is UNKNOWN."""
    return NOVA_STATES.get((status or "").upper(), RemoteState.UNKNOWN)


def parse_time(value: Any) -> datetime | None:
    """Nova's ISO 8601 time ('2026-11-28T20:05:32Z' or with an offset), as aware UTC."""
    if not isinstance(value, str) or not value:
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def fault_message(fault: Any) -> str | None:
    """The message of a server's `fault` ({code, message, created}), if it has one."""
    if isinstance(fault, Mapping):
        message = fault.get("message")
        if message:
            return str(message)
    return None


def is_no_valid_host(fault: str | None) -> bool:
    return fault is not None and NO_VALID_HOST.lower() in fault.lower()


def _addresses(value: Any) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if isinstance(value, Mapping):
        for net, entries in value.items():
            addrs = [
                str(e["addr"]) for e in entries or () if isinstance(e, Mapping) and "addr" in e
            ]
            if addrs:
                out[str(net)] = addrs
    return out


def _flavor(value: Any) -> str | None:
    """The server's flavor: its name (embedded from 2.47) or its id (before)."""
    if isinstance(value, Mapping):
        for key in ("original_name", "name", "id"):
            if value.get(key):
                return str(value[key])
    return None


def server_name(name: str, canopy_id: str) -> str:
    """The child's name for a server: the user's name, then `-canopy-` and the whole
    canopy id. Nova drops a deleted server's metadata but keeps its name, so a server
    deleted behind canopy's back is still recognised in a changes-since list."""
    suffix = f"-canopy-{canopy_id}"
    return name[: 255 - len(suffix)] + suffix


_ID_IN_NAME = re.compile(
    r"-canopy-([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"
)


def to_remote(server: Mapping[str, Any]) -> RemoteServer:
    """A Nova server (the API's JSON, keys as Nova names them) as a RemoteServer.

    The canopy id is the metadata's; for a deleted server, whose metadata Nova no longer
    shows, the one its name carries."""
    metadata = server.get("metadata") or {}
    canopy_id = metadata.get(CANOPY_ID_META) if isinstance(metadata, Mapping) else None
    if canopy_id is None and remote_state(server.get("status")) == RemoteState.DELETED:
        found = _ID_IN_NAME.search(str(server.get("name") or ""))
        canopy_id = found.group(1) if found else None
    return RemoteServer(
        remote_id=str(server["id"]),
        canopy_id=None if canopy_id is None else str(canopy_id),
        name=str(server.get("name") or ""),
        state=remote_state(server.get("status")),
        addresses=_addresses(server.get("addresses")),
        flavor=_flavor(server.get("flavor")),
        created_at=parse_time(server.get("created")),
        updated_at=parse_time(server.get("updated")),
        fault=fault_message(server.get("fault")),
        zone=server.get("OS-EXT-AZ:availability_zone") or None,
        installation=_text(
            metadata.get(INSTALLATION_META) if isinstance(metadata, Mapping) else None
        ),
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
