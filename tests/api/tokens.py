"""Real tokens for API tests: a project, a user with a role on it, and a token from Keystone's
own service code (the same path `POST /identity/v3/auth/tokens` takes)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from canopy.domain.clock import Clock
from canopy.services import identity, tokens
from canopy.services.passwords import hash_password
from canopy.store.db import Database
from canopy.store.models import Project, User


@dataclass(frozen=True)
class Caller:
    token: str
    project_id: str
    user_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Auth-Token": self.token}


async def caller(
    db: Database,
    clock: Clock,
    *,
    project: str = "demo",
    user: str = "alice",
    role: str = "member",
    password: str = "secret",
) -> Caller:
    """A token for `user` with `role` on `project`, creating both if needed."""
    now = clock.now()
    async with db.session() as s:
        p = (await s.execute(select(Project).where(Project.name == project))).scalar_one_or_none()
        if p is None:
            p = await identity.create_project(s, project, now)
        u = (await s.execute(select(User).where(User.name == user))).scalar_one_or_none()
        if u is None:
            u = await identity.create_user(
                s, user, hash_password(password), now, default_project_id=p.id
            )
        await identity.grant(s, u.id, p.id, role)
        token, _ = await tokens.issue_token(s, u, p, now, 3600)
        return Caller(token=token, project_id=p.id, user_id=u.id)
