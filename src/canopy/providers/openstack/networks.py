"""The network a server of a child OpenStack boots on: by id as it is, by name from Neutron."""

from __future__ import annotations

import uuid
from typing import Any

from canopy.domain.errors import CloudError


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def network_id(conn: Any, name_or_id: str, cloud: str) -> str:
    """The id of the child's network called `name_or_id` (a blocking Neutron look-up)."""
    try:
        found = conn.network.find_network(name_or_id, ignore_missing=False)
    except Exception as e:
        raise CloudError(
            f"cloud {cloud!r}: network {name_or_id!r} not found: {e}", cloud=cloud
        ) from e
    return str(found.id)
