"""Who is asking: the project, user and roles a request runs as, and what that makes them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum


class Standing(StrEnum):
    """What a caller may do, from their roles and the project their token is scoped to.

    Keystone's `admin_project` pattern: the admin role makes a cloud-wide admin only on the
    configured admin project; on any other project it makes that project's admin, who may
    do in that project what a member may and nothing beyond it.
    """

    CLOUD_ADMIN = "cloud_admin"
    PROJECT_ADMIN = "project_admin"
    MEMBER = "member"
    READER = "reader"


@dataclass(frozen=True, slots=True)
class RequestContext:
    project_id: str
    user_id: str = ""
    roles: frozenset[str] = frozenset({"member"})
    request_id: str = field(default_factory=lambda: f"req-{uuid.uuid4()}")
    # The token is scoped to the configured admin project (Keystone's `is_admin_project`).
    is_admin_project: bool = False

    @property
    def standing(self) -> Standing:
        if "admin" in self.roles:
            return Standing.CLOUD_ADMIN if self.is_admin_project else Standing.PROJECT_ADMIN
        if "member" in self.roles:
            return Standing.MEMBER
        return Standing.READER

    @property
    def is_cloud_admin(self) -> bool:
        """May act on every project's resources, the clouds and Keystone's users and roles."""
        return self.standing is Standing.CLOUD_ADMIN

    @property
    def is_project_admin(self) -> bool:
        """Holds the admin role on this (non-admin) project: a member here, nothing more."""
        return self.standing is Standing.PROJECT_ADMIN

    @property
    def can_write(self) -> bool:
        """May change the project's resources (every standing but reader)."""
        return self.standing is not Standing.READER
