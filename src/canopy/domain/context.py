"""Who is asking: the project, user and roles a request runs as."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RequestContext:
    project_id: str
    user_id: str = ""
    roles: frozenset[str] = frozenset({"member"})
    request_id: str = field(default_factory=lambda: f"req-{uuid.uuid4()}")

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @property
    def can_write(self) -> bool:
        return bool(self.roles & {"admin", "member"})
