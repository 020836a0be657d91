"""A Keystone client over the whole app: an admin token, and helpers to log in the way
keystoneauth does. Runs on SQLite and PostgreSQL (the `db_url` fixture)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from canopy.api.app import create_app
from canopy.config import Settings, load_settings
from canopy.domain.clock import FakeClock
from canopy.store.db import Database
from tests.api.tokens import Caller, caller

BASE = "http://canopy.test"
V3 = "/identity/v3"
TTL = 3600.0
ADMIN_PASSWORD = "admin-secret"
# Identity rows the shared PostgreSQL truncation (tests/conftest.py) does not clear.
_IDENTITY_TABLES = "tokens, role_assignments, keypair_pushes, keypairs, users"


@dataclass
class Keystone:
    settings: Settings
    db: Database
    clock: FakeClock
    client: httpx.AsyncClient  # sends the admin token
    anon: httpx.AsyncClient  # sends no token
    admin: Caller
    app: FastAPI

    async def login(
        self,
        user: str,
        password: str,
        *,
        project: str | None = None,
        scope: Any = None,
        query: str = "",
        via: httpx.AsyncClient | None = None,
    ) -> httpx.Response:
        """POST /auth/tokens with a password, as keystoneauth sends it."""
        auth: dict[str, Any] = {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": user, "domain": {"name": "Default"}, "password": password}
                },
            }
        }
        if project is not None:
            auth["scope"] = {"project": {"name": project, "domain": {"name": "Default"}}}
        elif scope is not None:
            auth["scope"] = scope
        client = via or self.anon
        return await client.post(f"{V3}/auth/tokens{query}", json={"auth": auth})

    def from_address(self, host: str) -> httpx.AsyncClient:
        """A client without a token whose requests come from `host` (close it after use)."""
        transport = httpx.ASGITransport(app=self.app, client=(host, 40000))
        return httpx.AsyncClient(transport=transport, base_url=BASE)

    async def token(self, user: str, password: str, project: str | None = None) -> str:
        r = await self.login(user, password, project=project)
        assert r.status_code == 201, r.text
        return r.headers["X-Subject-Token"]

    async def user(
        self, name: str, password: str, *, project: str | None = None, role: str = "member"
    ) -> Caller:
        """A user with `role` on `project` (created as needed), and a token for it."""
        return await caller(
            self.db, self.clock, project=project or "demo", user=name, role=role, password=password
        )

    def as_(self, token: str) -> dict[str, str]:
        return {"X-Auth-Token": token}


async def _clear_identity(db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        return  # each SQLite test has its own fresh file
    db = Database(db_url)
    try:
        async with db.engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {_IDENTITY_TABLES} RESTART IDENTITY CASCADE"))
    finally:
        await db.dispose()


@asynccontextmanager
async def keystone(
    db_url: str,
    tmp_path: Path,
    identity: dict[str, Any] | None = None,
    api: dict[str, Any] | None = None,
) -> AsyncIterator[Keystone]:
    """The app with `[identity]` (and `[api]`) settings over the tests' defaults, and its
    clients."""
    await _clear_identity(db_url)
    settings = load_settings(
        env={},
        overrides={
            "data_dir": str(tmp_path),
            "database": {"url": db_url},
            "api": {"public_url": BASE, **(api or {})},
            "identity": {"token_ttl_seconds": TTL, "region": "RegionTest", **(identity or {})},
        },
    )
    clock = FakeClock()
    db = Database(db_url)
    app = create_app(settings=settings, db=db, clock=clock)
    admin = await caller(
        db, clock, project="admin", user="admin", role="admin", password=ADMIN_PASSWORD
    )
    transport = httpx.ASGITransport(app=app)
    try:
        async with (
            httpx.AsyncClient(transport=transport, base_url=BASE, headers=admin.headers) as client,
            httpx.AsyncClient(transport=transport, base_url=BASE) as anon,
        ):
            yield Keystone(settings, db, clock, client, anon, admin, app)
    finally:
        await db.dispose()


@pytest.fixture
async def ks(db_url: str, tmp_path: Path) -> AsyncIterator[Keystone]:
    async with keystone(db_url, tmp_path) as k:
        yield k


def assert_keystone_fault(response: httpx.Response, code: int) -> str:
    """The response is Keystone's fault body with this code; its message."""
    assert response.status_code == code, response.text
    body = response.json()
    assert list(body) == ["error"], body
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["title"], str) and body["error"]["title"]
    message = body["error"]["message"]
    assert isinstance(message, str) and message
    return message
