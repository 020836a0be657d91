"""Server requests: validate, check quota, write intent rows, return. Controllers do the rest."""

from __future__ import annotations

from canopy.services.server_actions import ServerActions
from canopy.services.server_create import CreateServer as CreateServer
from canopy.services.server_create_many import ServerBulkCreation
from canopy.services.server_metadata import ServerMetadata
from canopy.services.server_queries import ServerQueries
from canopy.services.server_queries import ServerQuery as ServerQuery


class ServerService(ServerBulkCreation, ServerActions, ServerMetadata, ServerQueries):
    """Create, act on and read servers in one project's scope."""
